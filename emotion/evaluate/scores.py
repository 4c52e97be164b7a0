"""Point metrics of one split, named like training's (`test/acc`, `test/recall_anxious`).

The headline metrics go through the very torchmetrics collection training logs with, so an
evaluation of the same checkpoint on the same rows reproduces training's numbers exactly.
"""

from __future__ import annotations

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_calibration_error,
    multiclass_confusion_matrix,
    multiclass_f1_score,
)

from emotion.models.metrics import evaluation_metrics

CALIBRATION_BINS = 15


def point_metrics(
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    class_names: list[str],
    stage: str,
    calibration_bins: int = CALIBRATION_BINS,
) -> dict[str, float]:
    """acc, bal_acc, f1_macro, auroc, per-class recall/precision/F1 and ECE, as floats."""
    classes = len(class_names)
    collection = evaluation_metrics(class_names, stage)
    collection.update(probabilities, labels)
    values = {key: float(value) for key, value in collection.compute().items()}
    f1 = multiclass_f1_score(probabilities, labels, classes, average=None)
    for name, value in zip(class_names, f1.tolist(), strict=True):
        values[f"{stage}/f1_{name}"] = float(value)
    values[f"{stage}/ece"] = float(
        multiclass_calibration_error(
            probabilities, labels, classes, n_bins=calibration_bins, norm="l1"
        )
    )
    return values


def confusion_counts(probabilities: torch.Tensor, labels: torch.Tensor, classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class (argmax)."""
    return multiclass_confusion_matrix(probabilities, labels, classes).numpy().astype(np.int64)


def row_normalized(confusion: np.ndarray) -> np.ndarray:
    """Each true class's row as fractions (its recall on the diagonal); empty rows stay 0."""
    totals = confusion.sum(axis=-1, keepdims=True)
    return np.divide(confusion, totals, out=np.zeros(confusion.shape), where=totals > 0)


def metrics_from_confusion(confusion: np.ndarray, class_names: list[str]) -> dict[str, np.ndarray]:
    """Count metrics of one or many (..., C, C) confusion matrices, vectorised for bootstrap.

    Undefined values (a class absent from a resample) are NaN and left out of intervals.
    """
    with np.errstate(divide="ignore", invalid="ignore"):
        hits = np.diagonal(confusion, axis1=-2, axis2=-1).astype(np.float64)
        true_totals = confusion.sum(axis=-1)
        predicted_totals = confusion.sum(axis=-2)
        recall = hits / true_totals
        precision = hits / predicted_totals
        f1 = 2 * hits / (true_totals + predicted_totals)
        values = {
            "acc": hits.sum(axis=-1) / confusion.sum(axis=(-2, -1)),
            "bal_acc": recall.mean(axis=-1),
            "f1_macro": f1.mean(axis=-1),
        }
    for index, name in enumerate(class_names):
        values[f"recall_{name}"] = recall[..., index]
        values[f"precision_{name}"] = precision[..., index]
        values[f"f1_{name}"] = f1[..., index]
    return values
