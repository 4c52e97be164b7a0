"""The training loops `python -m emotion.bench gpu` compares: the framework (a Lightning
Trainer with the run's callbacks and TensorBoard logger) and a bare PyTorch loop, both with the
data resident on the device, plus the larger-batch runs. Timing lives in `gpu_timing`."""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger
from torch import nn

from emotion.bench.gpu_timing import DeviceClock, StepPhases, StepSplit
from emotion.bench.train import REFERENCE
from emotion.data.batches import BatchIndices, TensorRows
from emotion.data.datamodule import LandmarkDataModule
from emotion.models.classifier import LandmarkClassifier
from emotion.models.residual_mlp import ResidualMLP
from emotion.training.callbacks import EpochSummary

BASE_BATCH = 256
BASE_LR = 1e-3  # seed_reference's learning rate at batch 256
WEIGHT_DECAY = 1e-4
LABEL_SMOOTHING = 0.05


@dataclass
class RunResult:
    """One run's timed epochs: the step split, training rows per second, final val/bal_acc."""

    split: StepSplit
    val_bal_acc: float | None = None

    @property
    def samples_per_s(self) -> float:
        return sum(self.split.samples) / sum(self.split.wall_s)


def precision_for(device: torch.device) -> str:
    """bf16 mixed precision on CUDA (emotion/conf/trainer/gpu.yaml); full float32 on the CPU."""
    return "bf16-mixed" if device.type == "cuda" else "32-true"


def bench_trainer(
    device: torch.device, epochs: int, phases: StepPhases, log_dir: Path, validate: bool
) -> L.Trainer:
    """A Trainer as a run builds it: TensorBoard, the learning-rate monitor, the epoch log line."""
    return L.Trainer(
        max_epochs=epochs,
        accelerator="gpu" if device.type == "cuda" else "cpu",
        devices=1,
        precision=precision_for(device),
        logger=TensorBoardLogger(str(log_dir), name="tensorboard", version=""),
        callbacks=[phases, LearningRateMonitor(logging_interval="epoch"), EpochSummary()],
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
        use_distributed_sampler=False,
        **({} if validate else {"limit_val_batches": 0}),
    )


def framework_run(
    data: LandmarkDataModule,
    device: torch.device,
    timed_epochs: int,
    log_dir: Path,
    seed: int,
    lr: float = BASE_LR,
    validate: bool = False,
) -> RunResult:
    """`Trainer.fit` of the seed_reference model: one warm-up epoch, then `timed_epochs`."""
    L.seed_everything(seed, workers=True, verbose=False)
    model = LandmarkClassifier(
        class_names=data.class_names, input_dim=data.input_dim, lr=lr, **REFERENCE
    )
    phases = StepPhases(DeviceClock(device), skip_epochs=1)
    trainer = bench_trainer(device, 1 + timed_epochs, phases, log_dir, validate)
    trainer.fit(model, datamodule=data)
    val = trainer.callback_metrics.get("val/bal_acc")
    return RunResult(phases.split, None if val is None else float(val))


def bare_run(
    rows: TensorRows,
    num_classes: int,
    device: torch.device,
    timed_epochs: int,
    batch_size: int,
    noise_std: float,
    seed: int,
) -> RunResult:
    """The same training by hand: same network, batches, noise, optimiser and precision."""
    torch.manual_seed(seed)
    network = ResidualMLP(
        input_dim=rows.all_features.shape[1], num_classes=num_classes, **REFERENCE
    ).to(device)
    optimizer = torch.optim.AdamW(
        network.parameters(),
        lr=BASE_LR,
        weight_decay=WEIGHT_DECAY,
        **({"fused": True} if device.type == "cuda" else {}),
    )
    sampler = BatchIndices(
        len(rows),
        batch_size,
        shuffle=True,
        drop_last=len(rows) % batch_size == 1,
        seed=seed,
        device=device,
    )
    split = StepSplit(DeviceClock(device))
    loop = BareLoop(network, optimizer, nn.CrossEntropyLoss(label_smoothing=LABEL_SMOOTHING))
    for epoch in range(1 + timed_epochs):
        sampler.set_epoch(epoch)
        loop.epoch(rows, sampler, noise_std, split if epoch >= 1 else None)
    return RunResult(split)


@dataclass
class BareLoop:
    """Shuffle, noise, forward, backward, step: nothing else, marked phase by phase."""

    network: nn.Module
    optimizer: torch.optim.Optimizer
    criterion: nn.Module

    def epoch(
        self, rows: TensorRows, sampler: BatchIndices, noise_std: float, split: StepSplit | None
    ) -> None:
        """One pass over `sampler`'s batches; recorded into `split` unless it is a warm-up."""
        device = rows.all_features.device
        clock = DeviceClock(device)
        clock.synchronize()
        wall_start, epoch_start, samples = time.perf_counter(), clock.mark(), 0
        marks: list[tuple[Any, ...]] = []
        self.network.train()
        for index in sampler:
            features, labels = rows[index]
            features = features + torch.randn_like(features) * noise_std
            with torch.autocast(device.type, torch.bfloat16, enabled=device.type == "cuda"):
                forward_start = clock.mark()
                logits = self.network(features)
                forward_end = clock.mark()
                loss = self.criterion(logits, labels)
            self.optimizer.zero_grad(set_to_none=True)
            backward_start = clock.mark()
            loss.backward()
            backward_end = clock.mark()
            self.optimizer.step()
            marks.append((forward_start, forward_end, backward_start, backward_end, clock.mark()))
            samples += labels.shape[0]
        if split is None:
            return
        split.spans["epoch"].append((epoch_start, clock.mark()))
        clock.synchronize()
        split.wall_s.append(time.perf_counter() - wall_start)
        split.samples.append(samples)
        split.steps += len(marks)
        for forward_start, forward_end, backward_start, backward_end, step_end in marks:
            split.spans["forward"].append((forward_start, forward_end))
            split.spans["backward"].append((backward_start, backward_end))
            split.spans["optimizer"].append((backward_end, step_end))


def scaled_lr(batch_size: int, lr_cap: float) -> float:
    """Linear scaling from seed_reference's 1e-3 at batch 256, capped at `lr_cap`."""
    return min(BASE_LR * batch_size / BASE_BATCH, lr_cap)


def batch_scaling(
    data: LandmarkDataModule,
    device: torch.device,
    batch_sizes: list[int],
    timed_epochs: int,
    lr_cap: float,
    workdir: Path,
) -> list[dict[str, Any]]:
    """Each batch size trained the same epochs at its scaled learning rate, validated on the
    official split's validation people; throughput and accuracy against batch 256."""
    runs = []
    for batch_size in sorted({BASE_BATCH, *batch_sizes}):
        data.settings = dataclasses.replace(
            data.settings, batch_size=batch_size, eval_batch_size=max(1024, batch_size)
        )
        lr = scaled_lr(batch_size, lr_cap)
        run = framework_run(
            data, device, timed_epochs, workdir / f"batch{batch_size}", 0, lr, validate=True
        )
        runs.append(
            {
                "batch_size": batch_size,
                "lr": lr,
                "epochs_trained": 1 + timed_epochs,
                "steps_per_epoch": run.split.steps // max(timed_epochs, 1),
                "samples_per_s": run.samples_per_s,
                "val_bal_acc": run.val_bal_acc,
            }
        )
        print(f"batch {batch_size}: {run.samples_per_s:,.0f} samples/s, val {run.val_bal_acc}")
    base = runs[0]
    for entry in runs:
        entry["speedup_vs_256"] = entry["samples_per_s"] / base["samples_per_s"]
        if entry["val_bal_acc"] is not None and base["val_bal_acc"] is not None:
            entry["val_bal_acc_minus_256"] = entry["val_bal_acc"] - base["val_bal_acc"]
    return runs
