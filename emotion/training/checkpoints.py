"""`last.ckpt`, the checkpoint a rerun resumes from, written when it is worth its cost.

A small store's epoch takes milliseconds and its checkpoint tens of megabytes (the weights and
AdamW's two moments), so writing one per epoch makes a 200-epoch run mostly disk traffic.
`LastCheckpoint` writes at the end of an epoch once `every_seconds` have passed since its last
write, after the final epoch, and when SIGTERM (Slurm's preemption and time limit) or Ctrl-C
asks the run to stop: it finishes the epoch, writes, and the run exits unfinished, so the
rerun resumes there. Always at an epoch's end, so a resumed run equals an uninterrupted one.
A kill -9 loses at most `every_seconds` of training; before the first last.ckpt, the rerun
resumes from the best checkpoint, as whole a training state (`emotion.training.resume`).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Any

import lightning as L
from lightning.pytorch.callbacks import Checkpoint

from emotion.rundir import LAST_FILE

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class LastCheckpoint(Checkpoint):
    """Writes `<dirpath>/last.ckpt` on a time interval, at the end, and on a stop request.

    A `Checkpoint`, so Lightning calls it after the epoch is counted and after the other
    callbacks (the best checkpoint's record is in what it writes)."""

    FILE = LAST_FILE

    def __init__(self, dirpath: str, every_seconds: float = 300.0) -> None:
        self.dirpath = Path(dirpath)
        self.every_seconds = float(every_seconds)
        self.stop_signal: int | None = None
        self._written_at = 0.0
        self._written_step = -1
        self._previous: dict[int, Any] = {}

    @property
    def path(self) -> Path:
        return self.dirpath / self.FILE

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """After Lightning's own SIGTERM handler is in place, replacing it: that one stops
        mid-epoch with exit status 0 and no checkpoint, which looks like success."""
        self._written_at = time.monotonic()
        if threading.current_thread() is threading.main_thread():
            for number in STOP_SIGNALS:
                self._previous[number] = signal.getsignal(number)
                signal.signal(number, self._request_stop)

    def _request_stop(self, number: int, frame: Any) -> None:
        self.stop_signal = number
        for restored, previous in self._previous.items():  # a second signal acts at once
            signal.signal(restored, previous)
        log.warning(
            "%s: stopping after this epoch, with last.ckpt written (again to stop now)",
            signal.Signals(number).name,
        )

    def _restore_signals(self) -> None:
        if threading.current_thread() is threading.main_thread():
            for number, previous in self._previous.items():
                signal.signal(number, previous)
        self._previous.clear()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.fast_dev_run or trainer.sanity_checking:
            return
        # Every rank decides as rank 0 does: saving is collective under DDP.
        if trainer.strategy.broadcast(self.stop_signal is not None, src=0):
            trainer.should_stop = True  # on_train_end writes it
            return
        final = trainer.max_epochs is not None and trainer.current_epoch + 1 >= trainer.max_epochs
        due = final or time.monotonic() - self._written_at >= self.every_seconds
        if trainer.strategy.broadcast(due, src=0):
            self._write(trainer)

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        """The final state, when the last epoch's end did not write it (a stop request,
        max_steps, early stopping)."""
        if not trainer.fast_dev_run and self._written_step != trainer.global_step:
            self._write(trainer)

    def _write(self, trainer: L.Trainer) -> None:
        trainer.save_checkpoint(self.path, weights_only=False)  # the whole state, to resume
        self._written_at = time.monotonic()
        self._written_step = trainer.global_step

    def on_fit_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._restore_signals()

    def on_exception(
        self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException
    ) -> None:
        self._restore_signals()

    def state_dict(self) -> dict[str, Any]:
        return {"every_seconds": self.every_seconds}
