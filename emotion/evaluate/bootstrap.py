"""Confidence intervals that resample PEOPLE, not photos.

Photos of one person are not independent: resampling photos would pretend a test set of 10
people with 100 photos each were 1000 independent trials and give far too narrow intervals.
Each resample draws the test subjects with replacement and takes all photos of each draw.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torchmetrics.functional.classification import (
    multiclass_auroc,
    multiclass_calibration_error,
)

from emotion.evaluate.scores import CALIBRATION_BINS, metrics_from_confusion


def subject_bootstrap(
    probabilities: torch.Tensor,
    labels: torch.Tensor,
    subjects: np.ndarray,
    class_names: list[str],
    stage: str,
    *,
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    calibration_bins: int = CALIBRATION_BINS,
) -> dict[str, dict[str, float]]:
    """Percentile intervals `{"<stage>/<metric>": {"low", "high"}}` over subject resamples.

    Count metrics come from per-subject confusion matrices summed with resample weights (fast,
    vectorised); AUROC and ECE need the rows themselves and are computed per resample.
    """
    classes = len(class_names)
    people, person_of_row = np.unique(subjects.astype(str), return_inverse=True)
    predicted = probabilities.argmax(dim=1).numpy()
    truth = labels.numpy()
    per_person = np.zeros((len(people), classes, classes), dtype=np.int64)
    np.add.at(per_person, (person_of_row, truth, predicted), 1)
    rows_of = [np.flatnonzero(person_of_row == p) for p in range(len(people))]

    rng = np.random.default_rng(seed)
    draws = rng.integers(len(people), size=(resamples, len(people)))
    weights = np.stack([np.bincount(d, minlength=len(people)) for d in draws])
    samples = metrics_from_confusion(np.einsum("bs,sij->bij", weights, per_person), class_names)
    samples["auroc"] = np.empty(resamples)
    samples["ece"] = np.empty(resamples)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns when a resample lacks a class
        for index, draw in enumerate(draws):
            rows = torch.from_numpy(np.concatenate([rows_of[p] for p in draw]))
            sample_labels = labels[rows]
            sample_probabilities = probabilities[rows]
            if len(torch.unique(sample_labels)) < classes:
                samples["auroc"][index] = np.nan
            else:
                samples["auroc"][index] = float(
                    multiclass_auroc(sample_probabilities, sample_labels, classes, average="macro")
                )
            samples["ece"][index] = float(
                multiclass_calibration_error(
                    sample_probabilities, sample_labels, classes, n_bins=calibration_bins
                )
            )
    tail = (1.0 - confidence) / 2 * 100
    intervals = {}
    for name, values in samples.items():
        finite = values[np.isfinite(values)]
        if len(finite) == 0:
            continue
        low, high = np.percentile(finite, [tail, 100 - tail])
        intervals[f"{stage}/{name}"] = {"low": float(low), "high": float(high)}
    return intervals
