"""`python -m emotion.bench train`: one training epoch through the framework vs a bare loop.

Both run in the same process on the same in-memory tensors, the same model (seed_reference)
and the same batch size, alternating, so machine noise hits both alike. The result is the
ratio of median epoch times. It also times loading the HDF5 store into memory against merely
reading the file's bytes. Data: SYNTHETIC landmarks (emotion.synthetic).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger

from emotion.data.datamodule import LandmarkDataModule
from emotion.models.classifier import LandmarkClassifier
from emotion.models.residual_mlp import ResidualMLP
from emotion.notices import silence_known_notices
from emotion.store.io import read_store, write_store
from emotion.synthetic.generate import generate
from emotion.synthetic.settings import SyntheticSettings
from emotion.training.callbacks import EpochSummary

REFERENCE = {"width": 512, "depth": 3, "head_width": 256, "dropout": 0.3, "head_dropout": 0.2}
TARGET_RATIO = 1.25


class EpochClock(L.Callback):
    """Wall time of each training epoch, excluding Trainer set-up and tear-down."""

    def __init__(self) -> None:
        self.seconds: list[float] = []
        self._start = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._start = time.perf_counter()

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self.seconds.append(time.perf_counter() - self._start)


def framework_epoch(data: LandmarkDataModule, log_dir: Path, seed: int) -> float:
    """One epoch via Trainer.fit with the framework's logger and per-epoch callbacks."""
    L.seed_everything(seed, workers=True)
    model = LandmarkClassifier(class_names=data.class_names, input_dim=data.input_dim, **REFERENCE)
    clock = EpochClock()
    trainer = L.Trainer(
        max_epochs=1,
        accelerator="cpu",
        logger=TensorBoardLogger(str(log_dir), name="tensorboard", version=""),
        callbacks=[clock, LearningRateMonitor(logging_interval="epoch"), EpochSummary()],
        limit_val_batches=0,
        num_sanity_val_steps=0,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        log_every_n_steps=10,
        use_distributed_sampler=False,
    )
    trainer.fit(model, datamodule=data)
    return clock.seconds[0]


def bare_epoch(
    features: torch.Tensor,
    labels: torch.Tensor,
    data: LandmarkDataModule,
    num_classes: int,
    seed: int,
) -> float:
    """The same epoch as a hand-written PyTorch loop: shuffle, noise, forward, backward, step."""
    torch.manual_seed(seed)
    model = ResidualMLP(input_dim=features.shape[1], num_classes=num_classes, **REFERENCE)
    optimiser = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.05)
    model.train()
    start = time.perf_counter()
    order = torch.randperm(len(labels))
    for first in range(0, len(labels), data.settings.batch_size):
        rows = order[first : first + data.settings.batch_size]
        if len(rows) < 2:
            continue
        batch = features[rows] + torch.randn(len(rows), features.shape[1]) * data.settings.noise_std
        loss = criterion(model(batch), labels[rows])
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
    return time.perf_counter() - start


def time_loading(path: Path, repeats: int) -> dict[str, Any]:
    """read_store (validate + arrays into memory) against reading the raw bytes of the file."""
    raw, store = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        Path(path).read_bytes()
        raw.append(time.perf_counter() - start)
        start = time.perf_counter()
        read_store(path)
        store.append(time.perf_counter() - start)
    return {
        "file_mb": round(path.stat().st_size / 2**20, 2),
        "read_bytes_s": statistics.median(raw),
        "read_store_s": statistics.median(store),
        "ratio_read_store_over_read_bytes": statistics.median(store) / statistics.median(raw),
    }


@dataclass(frozen=True)
class Measurements:
    """Every timing of one run (seconds), as measured."""

    generate_s: float
    loading: dict[str, Any]
    setup_s: float
    train_rows: int
    framework: list[float]
    bare: list[float]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emotion.bench train", description=__doc__)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating epochs of each kind")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/train.json"))
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    silence_known_notices()
    load_at_start = os.getloadavg()
    measured = measure(args.samples, args.rounds)
    result = result_json(args, measured)
    result["machine"]["load_average_at_start"] = [round(load, 2) for load in load_at_start]
    result["machine"]["load_average_at_end"] = [round(load, 2) for load in os.getloadavg()]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(result)
    print(f"wrote {args.out}")


def measure(samples: int, rounds: int) -> Measurements:
    """Synthetic store, its loading, then framework and bare epochs alternating."""
    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        start = time.perf_counter()
        store = generate(SyntheticSettings(num_frames=samples, seed=0))
        generate_s = time.perf_counter() - start
        path = write_store(workdir / "bench.h5", store)
        loading = time_loading(path, repeats=3)
        data = LandmarkDataModule(str(path), noise_std=0.002, batch_size=256, seed=0)
        start = time.perf_counter()
        data.setup()
        setup_s = time.perf_counter() - start
        train_rows = data.rows("train")

        framework, bare = [], []
        for round_index in range(rounds):
            framework.append(framework_epoch(data, workdir / f"run{round_index}", round_index))
            bare.append(
                bare_epoch(
                    train_rows.features, train_rows.labels, data, data.num_classes, round_index
                )
            )
            print(f"round {round_index}: framework {framework[-1]:.2f} s, bare {bare[-1]:.2f} s")
    return Measurements(generate_s, loading, setup_s, len(train_rows), framework, bare)


def result_json(args: argparse.Namespace, measured: Measurements) -> dict[str, Any]:
    """The figures written to --out: epochs, their ratio and target, loading, machine."""
    framework, bare = measured.framework, measured.bare
    ratio = statistics.median(framework) / statistics.median(bare)
    return {
        "benchmark": "train",
        "data": "SYNTHETIC landmarks (emotion.synthetic), seed 0",
        "samples_generated": args.samples,
        "train_rows_per_epoch": measured.train_rows,
        "model": {"architecture": "seed_reference", **REFERENCE},
        "batch_size": 256,
        "rounds": args.rounds,
        "torch_threads": torch.get_num_threads(),
        "framework_epoch_s": framework,
        "bare_epoch_s": bare,
        "median_framework_epoch_s": statistics.median(framework),
        "median_bare_epoch_s": statistics.median(bare),
        "ratio_framework_over_bare": ratio,
        "target_ratio": TARGET_RATIO,
        "meets_target": ratio <= TARGET_RATIO,
        "framework_samples_per_s": measured.train_rows / statistics.median(framework),
        "generate_synthetic_s": measured.generate_s,
        "datamodule_setup_s": measured.setup_s,
        "hdf5_loading": measured.loading,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "lightning": L.__version__,
        },
    }


def print_summary(result: dict[str, Any]) -> None:
    """The medians, their ratio against the target, and the HDF5 loading ratio."""
    print(
        json.dumps(
            {
                k: result[k]
                for k in (
                    "median_framework_epoch_s",
                    "median_bare_epoch_s",
                    "ratio_framework_over_bare",
                    "meets_target",
                )
            }
        )
    )
    loading = result["hdf5_loading"]
    print(f"hdf5: read_store / read_bytes = {loading['ratio_read_store_over_read_bytes']:.2f}")


if __name__ == "__main__":
    main()
