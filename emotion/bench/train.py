"""`python -m emotion.bench train`: one training epoch through the framework vs a bare loop.

Both run in the same process on the same in-memory tensors, the same model (seed_reference)
and the same batch size, alternating, so machine noise hits both alike. The result is the
ratio of median epoch times. It also times loading the HDF5 store into memory against merely
reading the file's bytes. Data: SYNTHETIC landmarks (emotion.data.synthetic).
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import LearningRateMonitor
from lightning.pytorch.loggers import TensorBoardLogger

from emotion.callbacks import EpochSummary
from emotion.data.datamodule import LandmarkDataModule
from emotion.data.schema import read_store, write_store
from emotion.data.synthetic import SyntheticSettings, generate
from emotion.models.classifier import LandmarkClassifier
from emotion.models.residual_mlp import ResidualMLP

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
    for first in range(0, len(labels), data.batch_size):
        rows = order[first : first + data.batch_size]
        if len(rows) < 2:
            continue
        batch = features[rows] + torch.randn(len(rows), features.shape[1]) * data.noise_std
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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m emotion.bench train", description=__doc__)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="alternating epochs of each kind")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: default)")
    parser.add_argument("--out", type=Path, default=Path("outputs/bench/train.json"))
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as scratch:
        workdir = Path(scratch)
        start = time.perf_counter()
        store = generate(SyntheticSettings(num_frames=args.samples, seed=0))
        generate_s = time.perf_counter() - start
        path = write_store(workdir / "bench.h5", store)
        loading = time_loading(path, repeats=3)
        data = LandmarkDataModule(str(path), noise_std=0.002, batch_size=256, seed=0)
        start = time.perf_counter()
        data.setup()
        setup_s = time.perf_counter() - start
        train_rows = data.rows("train")

        framework, bare = [], []
        for round_index in range(args.rounds):
            framework.append(framework_epoch(data, workdir / f"run{round_index}", round_index))
            bare.append(
                bare_epoch(
                    train_rows.features, train_rows.labels, data, data.num_classes, round_index
                )
            )
            print(f"round {round_index}: framework {framework[-1]:.2f} s, bare {bare[-1]:.2f} s")

    ratio = statistics.median(framework) / statistics.median(bare)
    result = {
        "benchmark": "train",
        "data": "SYNTHETIC landmarks (emotion.data.synthetic), seed 0",
        "samples_generated": args.samples,
        "train_rows_per_epoch": len(train_rows),
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
        "framework_samples_per_s": len(train_rows) / statistics.median(framework),
        "generate_synthetic_s": generate_s,
        "datamodule_setup_s": setup_s,
        "hdf5_loading": loading,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "torch": torch.__version__,
            "lightning": L.__version__,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
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
    print(f"hdf5: read_store / read_bytes = {loading['ratio_read_store_over_read_bytes']:.2f}")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
