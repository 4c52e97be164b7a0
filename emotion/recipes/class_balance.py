"""Class-balanced loss weights: every class counts equally in the loss, however many rows.

AI Hub has far fewer anxious than neutral photos per person in some splits; an unweighted
loss then favours the majority class, which balanced accuracy punishes. Weights are
n_rows / (n_classes * n_rows_of_class), counted on the TRAINING rows only, set once when fitting
starts. The validation and test losses use the same weights; the metrics are unaffected.
"""

from __future__ import annotations

import logging

import lightning as L
import torch
from torch import nn
from torch.nn import functional as F

log = logging.getLogger(__name__)


def balanced_weights(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """n / (k * n_c) per class; a class without rows gets weight 0."""
    counts = torch.bincount(labels, minlength=num_classes).float()
    weights = torch.zeros(num_classes)
    present = counts > 0
    weights[present] = labels.numel() / (num_classes * counts[present])
    return weights


class WeightedCrossEntropy(nn.Module):
    """Cross-entropy with class weights kept out of the state dict.

    A persistent `weight` buffer would add `criterion.weight` to checkpoints, which a plain
    LandmarkClassifier (and an EMA copy made before fitting starts) could not load strictly.
    """

    def __init__(self, weight: torch.Tensor, label_smoothing: float = 0.0) -> None:
        super().__init__()
        self.register_buffer("weight", weight, persistent=False)
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(
            logits, labels, weight=self.weight, label_smoothing=self.label_smoothing
        )


class BalancedClassWeights(L.Callback):
    """Replaces the module's CrossEntropyLoss by one with balanced class weights."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        labels = trainer.datamodule.rows("train").labels
        weights = balanced_weights(labels, len(pl_module.class_names)).to(pl_module.device)
        smoothing = float(pl_module.hparams.get("label_smoothing", 0.0))
        pl_module.criterion = WeightedCrossEntropy(weights, label_smoothing=smoothing)
        log.info("class weights (training rows): %s", [round(w, 4) for w in weights.tolist()])
