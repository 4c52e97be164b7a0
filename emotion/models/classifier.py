"""LightningModule: the network (the residual MLP, or logistic regression with
`model.architecture=linear`), its loss, optimiser, schedule and metrics.

Where the model sees the data: `_shared_step`. Where numbers are reported: `self.log*` calls
here (TensorBoard scalars) and `confusion_matrices`, which the ConfusionMatrixImage callback
renders. Hyperparameters are plain numbers, strings and a list of strings, so a checkpoint
loads with `torch.load(weights_only=True)` and rebuilds the model on its own.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch import nn
from torchmetrics.classification import MulticlassAccuracy, MulticlassConfusionMatrix

from emotion.checkpoint import record_training
from emotion.errors import EmotionError
from emotion.models.choices import DEFAULT_ARCHITECTURE, Architecture
from emotion.models.metrics import evaluation_metrics
from emotion.models.residual_mlp import INPUT_DIM, ResidualMLP, count_parameters


class LandmarkClassifier(L.LightningModule):
    """Classifies flattened, normalised landmarks into `class_names`."""

    def __init__(
        self,
        class_names: list[str],
        input_dim: int = INPUT_DIM,
        architecture: Architecture = DEFAULT_ARCHITECTURE,
        width: int = 512,
        depth: int = 3,
        head_width: int = 256,
        dropout: float = 0.3,
        head_dropout: float = 0.2,
        lr: float = 1e-3,
        weight_decay: float = 1e-4,
        label_smoothing: float = 0.05,
        warmup_epochs: int = 0,
        min_lr: float = 0.0,
        compile: bool = False,
        compile_mode: str = "default",
    ) -> None:
        super().__init__()
        # logger=False: train() logs one flat, identical set of hparams for every run instead.
        # compile is how this process runs the network, not what it is: a checkpoint loads
        # uncompiled (evaluation, export) and resumes whatever the new run asks.
        self.save_hyperparameters(logger=False, ignore=["compile", "compile_mode"])
        architecture = checked_architecture(architecture)
        self.hparams["architecture"] = architecture.value  # a plain string for weights_only
        self.class_names = list(class_names)
        self.model: nn.Module
        if architecture is Architecture.linear:
            # Logistic regression: softmax over one affine map of the features (AdamW's weight
            # decay is its L2 penalty); width, depth and the dropouts do not apply.
            self.model = nn.Linear(input_dim, len(class_names))
        else:
            self.model = ResidualMLP(
                input_dim=input_dim,
                num_classes=len(class_names),
                width=width,
                depth=depth,
                head_width=head_width,
                dropout=dropout,
                head_dropout=head_dropout,
            )
        if compile:
            self.model.compile(mode=checked_compile_mode(compile_mode))  # state_dict keys kept
        self.criterion = nn.CrossEntropyLoss(label_smoothing=label_smoothing)
        # No argument checks per training step: they call torch.unique on the batch, which
        # waits for the GPU every step; inputs are argmax indices and the store's labels.
        self.train_acc = MulticlassAccuracy(len(class_names), average="micro", validate_args=False)
        self.val_metrics = evaluation_metrics(self.class_names, "val")
        self.test_metrics = evaluation_metrics(self.class_names, "test")
        self.val_confusion = MulticlassConfusionMatrix(len(class_names))
        self.test_confusion = MulticlassConfusionMatrix(len(class_names))
        self.confusion_matrices: dict[str, torch.Tensor] = {}

    @property
    def num_parameters(self) -> int:
        return count_parameters(self.model)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.model(features)

    def _shared_step(self, batch: tuple[torch.Tensor, torch.Tensor]) -> tuple[torch.Tensor, ...]:
        features, labels = batch
        logits = self.model(features)
        return self.criterion(logits, labels), logits, labels

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> Any:
        loss, logits, labels = self._shared_step(batch)
        # update(), not a call: the call also computes a per-batch accuracy nobody logs.
        self.train_acc.update(logits.argmax(dim=1), labels)
        self.log("train/loss", loss, on_step=True, on_epoch=True, prog_bar=True)
        if batch_idx == 0:
            # Registering the metric object once per epoch is enough: it accumulates every
            # batch through update() and Lightning computes it at the epoch's end. Logging it
            # every step would re-walk its attributes each time (a cost on a GPU's step).
            self.log("train/acc", self.train_acc, on_step=False, on_epoch=True)
        return loss

    def _evaluation_step(self, batch: tuple[torch.Tensor, torch.Tensor], stage: str) -> None:
        loss, logits, labels = self._shared_step(batch)
        probabilities = logits.softmax(dim=1)
        getattr(self, f"{stage}_metrics").update(probabilities, labels)
        getattr(self, f"{stage}_confusion").update(probabilities, labels)
        self.log(f"{stage}/loss", loss, on_step=False, on_epoch=True, prog_bar=stage == "val")

    def _evaluation_epoch_end(self, stage: str) -> None:
        metrics = getattr(self, f"{stage}_metrics")
        confusion = getattr(self, f"{stage}_confusion")
        values = metrics.compute()
        headline = f"{stage}/bal_acc"
        self.log(headline, values.pop(headline), prog_bar=True)
        self.log_dict(values)
        self.confusion_matrices[stage] = confusion.compute().cpu()
        metrics.reset()
        confusion.reset()

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._evaluation_epoch_end("val")

    def test_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        self._evaluation_step(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._evaluation_epoch_end("test")

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Add the validation metrics the checkpoint was chosen by (`emotion.checkpoint`); how
        its inputs were made and from which people, the data module records itself."""
        if self._trainer is None:
            return
        val_metrics = {
            key: float(value)
            for key, value in self.trainer.callback_metrics.items()
            if key.startswith("val/")
        }
        record_training(checkpoint, val_metrics)

    def configure_optimizers(self) -> Any:
        """AdamW with cosine annealing over the epochs, after an optional linear warm-up.

        On CUDA, AdamW's fused kernel updates every parameter in a few launches instead of
        several per tensor; CPU keeps the default implementation (and its exact numbers)."""
        on_cuda = all(parameter.device.type == "cuda" for parameter in self.parameters())
        optimizer = torch.optim.AdamW(
            self.parameters(),
            lr=self.hparams.lr,
            weight_decay=self.hparams.weight_decay,
            **({"fused": True} if on_cuda else {}),
        )
        max_epochs = max(1, int(self.trainer.max_epochs or 1))
        warmup = min(int(self.hparams.warmup_epochs), max_epochs - 1)
        cosine = torch.optim.lr_scheduler.CosineAnnealingLR(
            optimizer, T_max=max(1, max_epochs - warmup), eta_min=self.hparams.min_lr
        )
        scheduler: torch.optim.lr_scheduler.LRScheduler = cosine
        if warmup > 0:
            ramp = torch.optim.lr_scheduler.LinearLR(
                optimizer, start_factor=1.0 / (warmup + 1), total_iters=warmup
            )
            scheduler = torch.optim.lr_scheduler.SequentialLR(
                optimizer, [ramp, cosine], milestones=[warmup]
            )
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "interval": "epoch", "name": "train/lr"},
        }


def checked_architecture(architecture: Architecture | str) -> Architecture:
    """The Enum member; a name no version knows (a checkpoint from elsewhere) is a user error,
    not a ValueError (the config schema refuses one at compose time already)."""
    try:
        return Architecture(architecture)
    except ValueError:
        raise EmotionError(
            f"model.architecture={architecture!r} is not known",
            f"choose one of {[member.value for member in Architecture]} (a checkpoint naming "
            "another was written by another version of emotion-train)",
        ) from None


# torch.compile's modes; reduce-overhead also replays the step as CUDA graphs (docs/gpu.md).
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


def checked_compile_mode(mode: str) -> str:
    """The mode, or a user error naming the known ones (torch's own message is a traceback)."""
    if mode not in COMPILE_MODES:
        raise EmotionError(
            f"model.compile_mode={mode!r} is not known", f"choose one of {list(COMPILE_MODES)}"
        )
    return mode
