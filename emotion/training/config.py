"""`emotion/conf/train.yaml`'s typed schemas, registered in Hydra's ConfigStore: the run's own
settings (`train_schema`), and the `trainer`, `callbacks`, `logger` and `paths` groups.

Hydra checks each value's type and choice at compose time and names the key
(`full_key: trainer.max_epochs`); `emotion.training.ranges.check_train_config` then checks
the ranges once, before torch loads. Importing this module registers every schema of a
training run, the data and model groups' included.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

from hydra.core.config_store import ConfigStore
from omegaconf import MISSING, DictConfig, OmegaConf

from emotion.data import config as _data_schema  # noqa: F401  (registers data/schema)
from emotion.models import config as _model_schema  # noqa: F401  (registers model/schema)
from emotion.training import run_name as _run_name  # noqa: F401  (the run_name resolver)
from emotion.training import threads as _threads  # noqa: F401  (cores, threads_per_job)


class Resume(str, Enum):
    auto = "auto"  # continue from the newest checkpoint (last.ckpt or best-*.ckpt) when present
    never = "never"  # always start fresh; refuses when an earlier run is there
    must = "must"  # fail unless there is a checkpoint to continue from


class Selection(str, Enum):
    auto = "auto"
    best = "best"
    last = "last"


class MonitorMode(str, Enum):
    min = "min"
    max = "max"


class ProgressBar(str, Enum):
    auto = "auto"
    rich = "rich"
    tqdm = "tqdm"
    none = "none"


@dataclass
class TrainerConfig:
    """The Lightning Trainer arguments a config may set, with Lightning's own defaults
    (tests/test_training_config.py holds them to Trainer's signature). The loggers, callbacks,
    progress bar and root directory come from the other groups, not from here."""

    _target_: str = "lightning.pytorch.Trainer"
    accelerator: str = "auto"
    strategy: str = "auto"
    devices: Any = "auto"  # an int, a list of indices, "auto" or "-1"
    num_nodes: int = 1
    precision: str | None = None
    fast_dev_run: int | bool = False
    max_epochs: int | None = None
    min_epochs: int | None = None
    max_steps: int = -1
    min_steps: int | None = None
    max_time: str | None = None  # "DD:HH:MM:SS"
    limit_train_batches: int | float | None = None
    limit_val_batches: int | float | None = None
    limit_test_batches: int | float | None = None
    val_check_interval: int | float | None = None
    check_val_every_n_epoch: int | None = 1
    num_sanity_val_steps: int | None = None
    log_every_n_steps: int | None = None
    enable_model_summary: bool | None = None
    accumulate_grad_batches: int = 1
    gradient_clip_val: int | float | None = None
    gradient_clip_algorithm: str | None = None
    deterministic: Any = None  # true | false | "warn"
    benchmark: bool | None = None
    inference_mode: bool = True
    use_distributed_sampler: bool = True
    profiler: str | None = None  # simple | advanced | pytorch
    detect_anomaly: bool = False
    sync_batchnorm: bool = False


@dataclass
class PathsConfig:
    root_dir: str = MISSING
    data_dir: str = MISSING
    output_dir: str = MISSING
    run_dir: str = MISSING


@dataclass
class CheckpointConfig:
    _target_: str = "lightning.pytorch.callbacks.ModelCheckpoint"
    dirpath: str | None = None
    filename: str | None = None
    monitor: str | None = None
    mode: str = "min"  # min | max: train.yaml's monitor_mode
    save_top_k: int = 1
    save_last: bool | None = None
    auto_insert_metric_name: bool = True
    enable_version_counter: bool = True
    every_n_epochs: int | None = None
    train_time_interval: str | None = None


@dataclass
class LastCheckpointConfig:
    _target_: str = "emotion.training.checkpoints.LastCheckpoint"
    dirpath: str = MISSING
    every_seconds: float = 300.0


@dataclass
class LearningRateMonitorConfig:
    _target_: str = "lightning.pytorch.callbacks.LearningRateMonitor"
    logging_interval: str | None = None  # step | epoch


@dataclass
class CallbackConfig:
    """A callback of ours that takes no settings."""

    _target_: str = MISSING


@dataclass
class EMAConfig:
    _target_: str = "emotion.recipes.ema.EMAWeights"
    decay: float = 0.95


@dataclass
class TrunkConfig:
    _target_: str = "emotion.recipes.finetune.TrunkFromCheckpoint"
    checkpoint: str = MISSING
    freeze_trunk_epochs: int = 0


@dataclass
class CallbacksConfig:
    """The callbacks a run may have: null leaves one out (callbacks=none leaves out all).
    Another is added with `+callbacks.NAME={_target_: ...}`."""

    model_checkpoint: CheckpointConfig | None = None
    last_checkpoint: LastCheckpointConfig | None = None
    lr_monitor: LearningRateMonitorConfig | None = None
    confusion_matrix: CallbackConfig | None = None
    epoch_summary: CallbackConfig | None = None
    data_description: CallbackConfig | None = None
    # The training options' groups (ema=on, calibration=temperature, ...) and experiments.
    ema: EMAConfig | None = None
    temperature: CallbackConfig | None = None
    class_balance: CallbackConfig | None = None
    init_trunk: TrunkConfig | None = None


@dataclass
class TensorBoardConfig:
    _target_: str = "emotion.training.board.TensorBoard"
    save_dir: str = MISSING
    name: str | None = "lightning_logs"
    version: str | None = None
    default_hp_metric: bool = True


@dataclass
class CSVConfig:
    _target_: str = "lightning.pytorch.loggers.CSVLogger"
    save_dir: str = MISSING
    name: str | None = "lightning_logs"
    version: str | None = None


@dataclass
class MLFlowConfig:
    _target_: str = "lightning.pytorch.loggers.MLFlowLogger"
    experiment_name: str = "lightning_logs"
    run_name: str | None = None
    tracking_uri: str | None = None
    save_dir: str | None = "./mlruns"


@dataclass
class LoggerConfig:
    """The loggers of a run: logger=none leaves out all; logger=[tensorboard,csv] takes two."""

    tensorboard: TensorBoardConfig | None = None
    csv: CSVConfig | None = None
    mlflow: MLFlowConfig | None = None


@dataclass
class TrainConfig:
    """The run's own settings (the top of train.yaml); the groups have their own schemas."""

    task_name: str = "train"
    run_name: str = MISSING
    sweep_name: str = "sweep"
    seed: int = 42
    resume: Resume = Resume.auto
    ckpt_path: str | None = None
    overwrite: bool = False
    monitor: str = "val/bal_acc"
    monitor_mode: MonitorMode = MonitorMode.max
    select: Selection = Selection.auto
    optimized_metric: str | None = None
    progress_bar: ProgressBar = ProgressBar.auto
    # torch threads for this run; null: torch's default (every core). launcher=joblib sets
    # each job's share.
    threads: int | None = None
    # experiment=finetune_binary
    init_from: str | None = None
    freeze_trunk_epochs: int = 0
    data: Any = MISSING
    model: Any = MISSING
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    callbacks: CallbacksConfig = field(default_factory=CallbacksConfig)
    logger: LoggerConfig = field(default_factory=LoggerConfig)
    paths: PathsConfig = field(default_factory=PathsConfig)


def plain_config(cfg: DictConfig) -> DictConfig:
    """The composed config with its choices as the plain strings the code compares and
    checkpoints store, interpolations left for Hydra to resolve."""
    plain = OmegaConf.create(OmegaConf.to_container(cfg, resolve=False, enum_to_str=True))
    OmegaConf.set_struct(plain, True)
    return plain


ConfigStore.instance().store(name="train_schema", node=TrainConfig)
