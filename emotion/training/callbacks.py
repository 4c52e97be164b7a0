"""Callbacks for viewers: a confusion-matrix image per validation epoch, a plain log line."""

from __future__ import annotations

import json
import logging
import os
import time

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


def clock(seconds: float) -> str:
    """A duration as h:mm:ss (m:ss under an hour), as a progress bar shows it."""
    minutes, secs = divmod(int(round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class RunClock:
    """Elapsed time since this process started training and the time the remaining epochs
    should take at the pace of the epochs done so far (a resumed run counts only its own)."""

    def __init__(self) -> None:
        self.started: float | None = None
        self.first_epoch = 0

    def start(self, trainer: L.Trainer) -> None:
        if self.started is None:
            self.started, self.first_epoch = time.monotonic(), trainer.current_epoch

    def text(self, trainer: L.Trainer, done: int) -> str:
        """`elapsed 0:42, about 3:10 left` once `done` epochs (counted from 1) have ended."""
        if self.started is None:
            return ""
        elapsed = time.monotonic() - self.started
        finished = done - self.first_epoch
        total = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        if total is None or finished <= 0:
            return f"elapsed {clock(elapsed)}"
        left = elapsed / finished * max(total - done, 0)
        return f"elapsed {clock(elapsed)}, about {clock(left)} left"


class EpochSummary(L.Callback):
    """One plain log line per epoch, readable in a log file where no progress bar is, with the
    time spent and an estimate of the time left."""

    KEYS = ("train/loss", "train/acc", "val/loss", "val/acc", "val/bal_acc")

    def __init__(self) -> None:
        self.clock = RunClock()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.clock.start(trainer)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Every rank reads the metrics: under DDP that read is a collective sync, and a rank
        # that skipped it would meet its peers in the next collective (a deadlock).
        metrics = trainer.callback_metrics
        if not trainer.is_global_zero:
            return
        shown = " ".join(f"{key}={float(metrics[key]):.4f}" for key in self.KEYS if key in metrics)
        done = trainer.current_epoch + 1
        timing = self.clock.text(trainer, done)
        log.info("epoch %d/%d %s (%s)", done, trainer.max_epochs, shown, timing)


def timed_bar(kind: str) -> L.Callback:
    """Lightning's rich or tqdm bar with a `time` slot beside the metrics: elapsed and the
    estimate for the whole run, which the bar's own clock (this epoch's batches) lacks."""
    if kind == "rich":
        from lightning.pytorch.callbacks import RichProgressBar as Bar
    else:
        from lightning.pytorch.callbacks import TQDMProgressBar as Bar

    class TimedBar(Bar):  # type: ignore[misc, valid-type]
        def __init__(self) -> None:
            super().__init__()
            self.run_clock = RunClock()

        def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
            self.run_clock.start(trainer)
            super().on_train_start(trainer, pl_module)

        def get_metrics(
            self, trainer: L.Trainer, pl_module: L.LightningModule
        ) -> dict[str, int | str | float | dict[str, float]]:
            metrics = super().get_metrics(trainer, pl_module)
            timing = self.run_clock.text(trainer, trainer.current_epoch)
            return {**metrics, "time": timing} if timing else metrics

    return TimedBar()


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
