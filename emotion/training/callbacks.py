"""Callbacks for viewers: a confusion-matrix image per validation epoch, a plain log line."""

from __future__ import annotations

import json
import logging
import os

os.environ.setdefault("MPLBACKEND", "Agg")

import lightning as L  # noqa: E402
from lightning.pytorch.loggers import TensorBoardLogger  # noqa: E402
from torchmetrics.classification import MulticlassConfusionMatrix  # noqa: E402

log = logging.getLogger(__name__)


class ConfusionMatrixImage(L.Callback):
    """Draws the module's latest confusion matrix into TensorBoard's IMAGES tab."""

    def _draw(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        matrix = getattr(pl_module, "confusion_matrices", {}).get(stage)
        loggers = [lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)]
        if matrix is None or not loggers or not trainer.is_global_zero:
            return
        import matplotlib.pyplot as plt

        names = list(pl_module.class_names)
        figure, axes = MulticlassConfusionMatrix(len(names)).plot(val=matrix, labels=names)
        axes.set_title(f"{stage} confusion matrix, epoch {trainer.current_epoch}")
        for logger in loggers:
            logger.experiment.add_figure(
                f"{stage}/confusion_matrix", figure, global_step=trainer.global_step, close=False
            )
        plt.close(figure)

    def on_validation_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._draw(trainer, pl_module, "val")

    def on_test_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._draw(trainer, pl_module, "test")


class EpochSummary(L.Callback):
    """One plain log line per epoch, readable in a log file where no progress bar is."""

    KEYS = ("train/loss", "train/acc", "val/loss", "val/acc", "val/bal_acc")

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every rank reads the metrics: under DDP that read is a collective sync, and a rank
        # that skipped it would meet its peers in the next collective (a deadlock).
        metrics = trainer.callback_metrics
        if not trainer.is_global_zero:
            return
        shown = " ".join(f"{key}={float(metrics[key]):.4f}" for key in self.KEYS if key in metrics)
        log.info("epoch %d/%d %s", trainer.current_epoch + 1, trainer.max_epochs, shown)


class DataDescription(L.Callback):
    """Writes what the model is trained on into TensorBoard's TEXT tab, SYNTHETIC data flagged."""

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        summary = getattr(trainer.datamodule, "summary", None)
        if not summary or not trainer.is_global_zero:
            return
        kind = (
            "**SYNTHETIC** landmarks (generated, not real faces)"
            if summary.get("synthetic")
            else "landmarks extracted from photos"
        )
        text = f"{kind} from `{summary.get('path')}`\n\n```\n{json.dumps(summary, indent=2)}\n```"
        for logger in trainer.loggers:
            if isinstance(logger, TensorBoardLogger):
                logger.experiment.add_text("data", text, global_step=trainer.global_step)
