"""Where a training step's time goes, for `python -m emotion.bench gpu`.

A step is split into the network's forward, the backward pass, the optimiser's update, and
everything else (data indexing, noise, hooks, logging, metric updates, launch gaps). On a GPU
the points are CUDA events, so the split is the device's own timeline: time the GPU spends
idle while Python catches up lands in "everything else", which is what the framework's share
is about. On the CPU the points are `time.perf_counter` readings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import lightning as L
import torch

PHASES = ("forward", "backward", "optimizer")


class DeviceClock:
    """Marks points on the device's timeline and turns pairs of marks into seconds."""

    def __init__(self, device: torch.device) -> None:
        self.cuda = device.type == "cuda"

    def mark(self) -> Any:
        """A CUDA event recorded on the current stream (no waiting), or the host's clock."""
        if self.cuda:
            event = torch.cuda.Event(enable_timing=True)
            event.record()
            return event
        return time.perf_counter()

    def seconds(self, start: Any, end: Any) -> float:
        """Seconds from `start` to `end`; call `synchronize` first on a GPU."""
        if self.cuda:
            return float(start.elapsed_time(end)) / 1000.0
        return float(end - start)

    def synchronize(self) -> None:
        """Wait for the device, so a host clock reading means the work is done."""
        if self.cuda:
            torch.cuda.synchronize()


@dataclass
class StepSplit:
    """Marks of the timed epochs; `seconds()` resolves them once the device is idle."""

    clock: DeviceClock
    spans: dict[str, list[tuple[Any, Any]]] = field(
        default_factory=lambda: {name: [] for name in (*PHASES, "epoch")}
    )
    wall_s: list[float] = field(default_factory=list)
    samples: list[int] = field(default_factory=list)
    steps: int = 0

    def seconds(self) -> dict[str, float]:
        """Device seconds per phase over all timed epochs, and `other`: the rest of the epoch."""
        self.clock.synchronize()
        totals = {
            name: sum(self.clock.seconds(start, end) for start, end in spans)
            for name, spans in self.spans.items()
        }
        totals["other"] = totals["epoch"] - sum(totals[name] for name in PHASES)
        return totals


def split_summary(splits: list[StepSplit]) -> dict[str, Any]:
    """Phase seconds summed over rounds, per step in milliseconds, and as shares of the epoch."""
    totals: dict[str, float] = {}
    for split in splits:
        for name, value in split.seconds().items():
            totals[name] = totals.get(name, 0.0) + value
    steps = sum(split.steps for split in splits)
    epoch = totals["epoch"] or float("nan")
    return {
        "steps": steps,
        "ms_per_step": {name: 1000 * value / max(steps, 1) for name, value in totals.items()},
        "share_of_epoch": {
            name: totals[name] / epoch for name in (*PHASES, "other") if name in totals
        },
        "other_share": totals["other"] / epoch,
    }


class StepPhases(L.Callback):
    """The framework's side of the split, from Lightning's own hooks.

    forward: the network's forward (hooks on `pl_module.model`); backward:
    `on_before_backward` to `on_after_backward`; optimizer: `on_before_optimizer_step` to the
    optimiser's step post-hook. The first `skip_epochs` epochs warm up and are not timed.
    """

    def __init__(self, clock: DeviceClock, skip_epochs: int = 1) -> None:
        self.split = StepSplit(clock)
        self.skip_epochs = skip_epochs
        self._open: dict[str, Any] = {}
        self._wall_start = 0.0
        self._samples = 0

    def _timed(self, trainer: L.Trainer) -> bool:
        return trainer.training and trainer.current_epoch >= self.skip_epochs

    def _start(self, name: str, trainer: L.Trainer) -> None:
        if self._timed(trainer):
            self._open[name] = self.split.clock.mark()

    def _end(self, name: str) -> None:
        if name in self._open:
            self.split.spans[name].append((self._open.pop(name), self.split.clock.mark()))

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        network = pl_module.model
        network.register_forward_pre_hook(lambda *_: self._start("forward", trainer))
        network.register_forward_hook(lambda *_: self._end("forward"))
        for optimizer in trainer.optimizers:
            optimizer.register_step_post_hook(lambda *_: self._end("optimizer"))

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.split.clock.synchronize()
        self._wall_start = time.perf_counter()
        self._samples = 0
        self._start("epoch", trainer)

    def on_before_backward(self, trainer: L.Trainer, *_: Any) -> None:
        self._start("backward", trainer)

    def on_after_backward(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._end("backward")

    def on_before_optimizer_step(self, trainer: L.Trainer, *_: Any) -> None:
        self._start("optimizer", trainer)

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        """Counts rows; the epoch's last training batch closes its timing (before validation)."""
        self._samples += int(batch[1].shape[0])
        if not self._timed(trainer):
            return
        self.split.steps += 1
        if batch_idx == trainer.num_training_batches - 1:
            self._end("epoch")
            self.split.clock.synchronize()
            self.split.wall_s.append(time.perf_counter() - self._wall_start)
            self.split.samples.append(self._samples)
