"""The two plots readers expect beside a confusion matrix: a reliability diagram (is a 90 %
score right 90 % of the time?) and the ROC curve of the class a screen looks for."""

from __future__ import annotations

import os
from typing import Any

os.environ.setdefault("MPLBACKEND", "Agg")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torchmetrics.classification import BinaryROC  # noqa: E402


def reliability_bins(
    probabilities: torch.Tensor, labels: torch.Tensor, bins: int
) -> list[dict[str, float]]:
    """Equal-width bins of the top probability, as torchmetrics' ECE bins them (a score on a
    boundary goes to the upper bin; scores of exactly 1.0 get a bin of their own): per bin its
    photos, mean confidence and accuracy. The photo-weighted mean of |accuracy - confidence|
    is the report's ECE."""
    confidence, predicted = probabilities.float().max(dim=1)
    correct = predicted.eq(labels).double()
    edges = torch.linspace(0, 1, bins + 1)  # float32, as torchmetrics' own
    index = torch.bucketize(confidence, edges, right=True) - 1  # bins: exactly 1.0
    slots = bins + 1
    count = torch.zeros(slots, dtype=torch.float64).scatter_add_(0, index, torch.ones_like(correct))
    summed = torch.zeros(slots, dtype=torch.float64).scatter_add_(0, index, confidence.double())
    hits = torch.zeros(slots, dtype=torch.float64).scatter_add_(0, index, correct)
    lows = edges.tolist()
    highs = edges[1:].tolist() + [1.0]
    rows = []
    for slot in range(slots):
        n = int(count[slot])
        if slot == bins and not n:
            break  # the slot for scores of exactly 1.0 appears only when one is there
        rows.append(
            {
                "low": round(lows[slot], 6),
                "high": round(highs[slot], 6),
                "photos": n,
                "confidence": float(summed[slot]) / n if n else None,
                "accuracy": float(hits[slot]) / n if n else None,
            }
        )
    return rows


def reliability_figure(bins: list[dict[str, Any]], title: str) -> Any:
    """Accuracy per confidence bin against the diagonal of perfect calibration, with each
    bin's share of the photos beneath, so an empty or thin bin is not read as evidence."""
    import matplotlib.pyplot as plt

    figure, (curve, share) = plt.subplots(
        2, 1, figsize=(5, 5.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    filled = [row for row in bins if row["photos"]]
    total = sum(row["photos"] for row in bins) or 1
    width = bins[0]["high"] - bins[0]["low"]
    centres = [(row["low"] + row["high"]) / 2 for row in filled]
    curve.bar(centres, [row["accuracy"] for row in filled], width=width * 0.9, label="accuracy")
    curve.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    curve.plot(
        [row["confidence"] for row in filled],
        [row["accuracy"] for row in filled],
        marker="o",
        color="black",
        linewidth=1,
        label="accuracy at mean confidence",
    )
    curve.set(ylabel="fraction correct", ylim=(0, 1), title=title)
    curve.legend(loc="upper left", fontsize="small")
    share.bar(centres, [row["photos"] / total for row in filled], width=width * 0.9)
    share.set(xlabel="top probability (confidence)", ylabel="share of photos", xlim=(0, 1))
    figure.tight_layout()
    return figure


def roc_figure(probabilities: torch.Tensor, labels: torch.Tensor, positive: int, title: str) -> Any:
    """torchmetrics' ROC plot of P(positive class) against the rest, AUROC in the legend, with
    the argmax decision (P >= 0.5 for two classes) marked where it sits on the curve."""
    binary = labels.eq(positive).long()
    scores = probabilities[:, positive].double()
    roc = BinaryROC()
    roc.update(scores, binary)
    figure, axes = roc.plot(score=True)
    predicted = probabilities.argmax(dim=1).eq(positive)
    negatives, positives = int((binary == 0).sum()), int((binary == 1).sum())
    if negatives and positives:
        fpr = float((predicted & binary.eq(0)).sum()) / negatives
        tpr = float((predicted & binary.eq(1)).sum()) / positives
        axes.plot([fpr], [tpr], marker="o", color="black", label="argmax decision")
    axes.plot([0, 1], [0, 1], linestyle="--", color="grey", label="chance")
    axes.legend(loc="lower right", fontsize="small")
    axes.set_title(title)
    return figure


def gap(bins: list[dict[str, Any]]) -> float:
    """The photo-weighted mean |accuracy - confidence| over the bins: the ECE they imply."""
    total = sum(row["photos"] for row in bins)
    weighted = sum(
        row["photos"] * abs(row["accuracy"] - row["confidence"]) for row in bins if row["photos"]
    )
    return float(weighted / total) if total else float(np.nan)
