"""`emotion/conf/eval.yaml`'s typed schema, registered in Hydra's ConfigStore as
`eval_schema`: Hydra checks each value's type and choice at compose time and names the key
(`full_key: bootstrap.resamples`); `check_eval_config` checks the ranges once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from enum import Enum

from hydra.core.config_store import ConfigStore
from omegaconf import DictConfig

from emotion.data.splits import SplitStrategy
from emotion.errors import check_ranges

# Past these an evaluation would not end, or not fit in memory (the resample draws alone are
# resamples x people integers); the defaults are far below them.
MAX_RESAMPLES = 100_000
MAX_CALIBRATION_BINS = 1_000


class Split(str, Enum):
    train = "train"
    val = "val"
    test = "test"


@dataclass
class EvalDataConfig:
    """The data settings an evaluation may change; null keeps the run's own."""

    path: str | None = None
    split_strategy: SplitStrategy | None = None
    val_fraction: float | None = None
    min_val_subjects: int | None = None
    drop_overlap: bool | None = None
    fold: int | None = None
    num_folds: int | None = None
    split_seed: int | None = None
    eval_batch_size: int | None = None


@dataclass
class BootstrapConfig:
    resamples: int = 1000
    confidence: float = 0.95
    seed: int = 0


@dataclass
class ThresholdConfig:
    positive_class: str = "anxious"
    target_recall: float | None = None


@dataclass
class EvalConfig:
    run_dir: str | None = None
    ckpt_path: str | None = None
    split: Split = Split.test
    output_dir: str | None = None
    data: EvalDataConfig = field(default_factory=EvalDataConfig)
    bootstrap: BootstrapConfig = field(default_factory=BootstrapConfig)
    calibration_bins: int = 15
    threshold: ThresholdConfig = field(default_factory=ThresholdConfig)
    tensorboard: bool = True


def check_eval_config(cfg: DictConfig) -> None:
    """What no report can be computed with: no resamples, a confidence outside (0, 1); and
    what one could not finish with (a billion resamples, a hundred million bins)."""
    bootstrap, recall = cfg.bootstrap, cfg.threshold.target_recall
    check_ranges(
        [
            (
                "bootstrap.resamples",
                bootstrap.resamples,
                1 <= bootstrap.resamples <= MAX_RESAMPLES,
                f"1 to {MAX_RESAMPLES} (1000 is the usual)",
            ),
            (
                "bootstrap.confidence",
                bootstrap.confidence,
                0 < bootstrap.confidence < 1,
                "a value in (0, 1), e.g. 0.95",
            ),
            (
                "calibration_bins",
                cfg.calibration_bins,
                1 <= cfg.calibration_bins <= MAX_CALIBRATION_BINS,
                f"1 to {MAX_CALIBRATION_BINS} (15 is the usual)",
            ),
            (
                "threshold.target_recall",
                recall,
                recall is None or (math.isfinite(recall) and 0 < recall <= 1),
                "a recall in (0, 1], e.g. 0.9, or null for no operating point",
            ),
            (
                "data.eval_batch_size",
                cfg.data.eval_batch_size,
                cfg.data.eval_batch_size is None or cfg.data.eval_batch_size >= 1,
                "1 or more rows",
            ),
        ]
    )


ConfigStore.instance().store(name="eval_schema", node=EvalConfig)
