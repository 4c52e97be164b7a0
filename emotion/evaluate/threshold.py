"""An operating point for screening: a decision threshold that reaches a target recall of
the positive class (anxious), chosen on VALIDATION data and then reported on the test set.

Screening cares most about not missing anxiety, so the threshold is the one with the best
precision among those whose validation recall is at least the target. Choosing it on the test
set would make the reported test recall optimistic.
"""

from __future__ import annotations

from typing import Any

import torch
from torchmetrics.functional.classification import binary_precision_at_fixed_recall

from emotion.errors import EmotionError


def positive_index(class_names: list[str], positive_class: str) -> int:
    if positive_class not in class_names:
        raise EmotionError(
            f"threshold.positive_class={positive_class!r} is not one of the model's classes "
            f"{class_names}",
            f"choose one of {class_names}",
        )
    return class_names.index(positive_class)


def choose_threshold(
    probabilities: torch.Tensor, labels: torch.Tensor, positive: int, target_recall: float
) -> float:
    """The threshold on P(positive) with the best precision at recall >= target_recall."""
    if not 0.0 < target_recall <= 1.0:
        raise EmotionError(
            f"threshold.target_recall={target_recall} must lie in (0, 1]", "e.g. 0.9"
        )
    is_positive = (labels == positive).long()
    if int(is_positive.sum()) == 0:
        raise EmotionError("the validation split has no positive rows to choose a threshold on")
    _, threshold = binary_precision_at_fixed_recall(
        probabilities[:, positive], is_positive, min_recall=target_recall
    )
    return float(threshold)


def at_threshold(
    probabilities: torch.Tensor, labels: torch.Tensor, positive: int, threshold: float
) -> dict[str, Any]:
    """Positive-vs-rest figures when `P(positive) >= threshold` means positive."""
    flagged = probabilities[:, positive] >= threshold
    is_positive = labels == positive
    tp = int((flagged & is_positive).sum())
    fp = int((flagged & ~is_positive).sum())
    fn = int((~flagged & is_positive).sum())
    tn = int((~flagged & ~is_positive).sum())
    recall = tp / (tp + fn) if tp + fn else float("nan")
    specificity = tn / (tn + fp) if tn + fp else float("nan")
    return {
        "recall": recall,
        "precision": tp / (tp + fp) if tp + fp else float("nan"),
        "specificity": specificity,
        "bal_acc": (recall + specificity) / 2,
        "flagged_fraction": (tp + fp) / max(1, len(labels)),
        "confusion": {"tp": tp, "fp": fp, "fn": fn, "tn": tn},
    }


def operating_point(
    val: tuple[torch.Tensor, torch.Tensor],
    evaluated: tuple[torch.Tensor, torch.Tensor],
    class_names: list[str],
    positive_class: str,
    target_recall: float,
) -> dict[str, Any]:
    """Threshold from validation; its figures on validation and on the evaluated split."""
    positive = positive_index(class_names, positive_class)
    threshold = choose_threshold(*val, positive, target_recall)
    return {
        "positive_class": positive_class,
        "target_recall": target_recall,
        "chosen_on": "val",
        "threshold": threshold,
        "val": at_threshold(*val, positive, threshold),
        "evaluated": at_threshold(*evaluated, positive, threshold),
        "at_0.5": at_threshold(*evaluated, positive, 0.5) if len(class_names) == 2 else None,
    }
