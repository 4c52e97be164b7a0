"""`train(cfg)`: one training run from a composed `emotion/conf/train.yaml`, start to metrics.json.

Where the pieces meet: the data module (`emotion.data`) and the classifier
(`emotion.models`) are built from the config, the run directory is locked and resumed or
started (`emotion.training.resume`), Lightning fits and tests, and the results are written
(`emotion.training.results`: metrics.json, the HPARAMS entry).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

import hydra
import lightning as L
import torch
from hydra.core.hydra_config import HydraConfig
from hydra.errors import InstantiationException
from hydra.types import RunMode
from lightning.fabric.utilities.rank_zero import rank_zero_only
from lightning.pytorch.callbacks import LearningRateMonitor, ModelCheckpoint
from omegaconf import DictConfig

from emotion.data.datamodule import LandmarkDataModule
from emotion.data.splits import MEANINGFUL_VAL_SUBJECTS
from emotion.errors import EmotionError
from emotion.models.classifier import LandmarkClassifier
from emotion.notices import silence_known_notices
from emotion.rundir import CHECKPOINT_DIR, LAST_FILE, METRICS_FILE, write_json_atomic
from emotion.synthetic.generate import ensure_default_store
from emotion.training.callbacks import timed_bar
from emotion.training.checkpoints import LastCheckpoint
from emotion.training.config import plain_config
from emotion.training.next_step import finished_notice, next_steps, point_latest
from emotion.training.results import log_final_hparams, run_result
from emotion.training.resume import check_resumable, plan_resume, run_directory_lock
from emotion.training.safety import (
    AtomicCheckpointIO,
    FiniteLoss,
    RandomState,
    disk_full,
    disk_full_error,
)

log = logging.getLogger(__name__)
silence_known_notices()


def build(config: DictConfig, **kwargs: Any) -> Any:
    """hydra.utils.instantiate, but a user error inside a constructor stays a user error."""
    try:
        return hydra.utils.instantiate(config, _convert_="all", **kwargs)
    except InstantiationException as error:
        cause = error.__cause__
        if isinstance(cause, EmotionError):
            raise cause from None
        raise EmotionError(
            str(error), "check the spelling of the keys in that config group"
        ) from error


def progress_bar_callbacks(choice: str) -> tuple[list[L.Callback], bool]:
    """A rich bar when interactive, none (plain epoch log lines instead) when logging to a file.
    The choice is one of the schema's (`ProgressBar`, emotion/training/config.py)."""
    if choice == "auto":
        choice = "rich" if sys.stderr.isatty() else "none"
    if choice in ("rich", "tqdm"):
        return [timed_bar(choice)], True
    return [], False


def train(cfg: DictConfig) -> dict[str, Any]:
    """Train, then test the best checkpoint; returns what metrics.json holds.

    The run directory is locked for the whole run (rank 0), so a second run cannot mix its
    checkpoints and metrics into this one's."""
    cfg = plain_config(cfg)
    run_dir = Path(cfg.paths.run_dir)
    with run_directory_lock(run_dir, enabled=rank_zero_only.rank == 0):
        try:
            return _train_in(run_dir, cfg)
        except (OSError, ValueError, RuntimeError) as error:
            full = disk_full(error)
            if full is None:
                raise
            raise disk_full_error(full, run_dir) from error


def check_accelerator(accelerator: str) -> None:
    """`trainer=gpu` without a GPU: say so before any data is read or generated."""
    if accelerator not in ("gpu", "cuda"):
        return
    if torch.cuda.is_available() or (accelerator == "gpu" and torch.backends.mps.is_available()):
        return
    raise EmotionError(
        f"trainer.accelerator={accelerator} asks for a GPU, and torch {torch.__version__} sees "
        "none (a CPU build of torch, or no visible CUDA device)",
        "train on the CPU: leave out trainer=gpu; or run on a machine with a CUDA GPU and a "
        "CUDA build of torch (docs/gpu.md)",
    )


def _train_in(run_dir: Path, cfg: DictConfig) -> dict[str, Any]:
    check_accelerator(str(cfg.trainer.get("accelerator", "auto")))
    if cfg.get("threads"):
        torch.set_num_threads(int(cfg.threads))
    log.info("torch threads: %d", torch.get_num_threads())
    L.seed_everything(cfg.seed, workers=True)
    ensure_default_store(cfg.data.path, cfg.data.get("synthetic"))
    datamodule: LandmarkDataModule = build(cfg.data)
    if datamodule.settings.split_strategy == "none":
        raise EmotionError(
            "data.split_strategy=none leaves no training rows: it scores a store with a model "
            "trained elsewhere",
            "train with data.split_strategy=official or kfold; use none with emotion-eval",
        )
    datamodule.setup()
    model: LandmarkClassifier = build(
        cfg.model, class_names=datamodule.class_names, input_dim=datamodule.input_dim
    )
    n_params = model.num_parameters
    log.info("model: %s parameters, %.1f MB as float32", f"{n_params:,}", n_params * 4 / 1e6)

    plan = plan_resume(
        run_dir,
        resume=cfg.resume,
        ckpt_path=cfg.ckpt_path,
        overwrite=cfg.overwrite,
        is_global_zero=rank_zero_only.rank == 0,
    )
    log.info("%s", plan.reason)
    if plan.ckpt_path:
        check_resumable(plan.ckpt_path, model, resume_fix(run_dir, given=bool(cfg.ckpt_path)))

    selection = checkpoint_selection(str(cfg.select), datamodule)
    trainer = build_trainer(cfg, run_dir, selection, validate=len(datamodule.rows("val")) > 0)
    sweep_dir = started(run_dir, cfg, plan.ckpt_path)
    trainer.fit(model, datamodule=datamodule, ckpt_path=plan.ckpt_path)
    stop_if_asked(trainer)
    tested = tested_checkpoint(trainer, run_dir, selection)
    test = trainer.test(model, datamodule=datamodule, ckpt_path=tested or None, verbose=True)[0]
    result = run_result(cfg, trainer, model, datamodule, tested, test, selection)
    if trainer.is_global_zero:
        write_json_atomic(run_dir / METRICS_FILE, result)
        log_final_hparams(trainer, cfg, result)
        log.info("wrote %s", run_dir / METRICS_FILE)
        for caveat in result["caveats"]:  # again at the end, beside the figures it qualifies
            log.warning("%s", caveat)
        for line in next_steps(run_dir, sweep_dir):
            log.info("%s", line)
    return result


def started(run_dir: Path, cfg: DictConfig, resumed: str | None) -> Path | None:
    """Once a run's settings and data are checked: `latest` points at it (or at its sweep),
    and a rerun that meets a finished run says so. Returns the sweep folder of a sweep job."""
    if rank_zero_only.rank != 0:
        return None
    sweep_dir = run_dir.parent if sweep_job() else None  # the job's folder is <sweep>/<name>
    point_latest(sweep_dir if sweep_dir is not None else run_dir)
    metrics = run_dir / METRICS_FILE
    if resumed and not cfg.ckpt_path and metrics.is_file():
        try:
            earlier = json.loads(metrics.read_text())
        except (OSError, ValueError):
            earlier = {}
        max_epochs = cfg.trainer.get("max_epochs")
        log.warning("%s", finished_notice(earlier, max_epochs))
    return sweep_dir


def sweep_job() -> bool:
    """Whether this run is a job of `emotion-train -m`."""
    return HydraConfig.initialized() and HydraConfig.get().mode == RunMode.MULTIRUN


def stop_if_asked(trainer: L.Trainer) -> None:
    """SIGTERM or Ctrl-C stopped training at an epoch's end with last.ckpt written: the run
    is unfinished, so no test and no metrics.json; exit as a signalled process does."""
    for callback in trainer.callbacks:
        if isinstance(callback, LastCheckpoint) and callback.stop_signal is not None:
            name = signal.Signals(callback.stop_signal).name
            log.warning(
                "%s: stopped after epoch %d with %s written; rerun the same command to resume",
                name,
                trainer.current_epoch,
                callback.path,
            )
            raise SystemExit(128 + callback.stop_signal)


def resume_fix(run_dir: Path, given: bool = False) -> str:
    """What to do when the checkpoint to resume cannot be used: the user's own `ckpt_path`
    (`given`), or one the run directory holds."""
    if given:
        return (
            "point ckpt_path at a checkpoint emotion-train wrote for this model "
            "(<run_dir>/checkpoints/*.ckpt, the same model.* settings), or leave ckpt_path out"
        )
    best = sorted((run_dir / CHECKPOINT_DIR).glob("best-*.ckpt"))
    earlier = f"resume from {best[-1]} with ckpt_path={best[-1]}, or " if best else ""
    return f"{earlier}start over with overwrite=true (or give this run another run_name=...)"


def checkpoint_selection(choice: str, datamodule: LandmarkDataModule) -> str:
    """best or last: `auto` picks best when there are validation people, else last."""
    people = len(set(datamodule.subjects("val").tolist()))
    if choice == "auto":
        choice = "best" if people else "last"
    if choice == "best" and not people:
        raise EmotionError(
            "select=best chooses the checkpoint on the validation people, but there are none "
            f"({datamodule.summary.get('no_validation_split')})",
            "use select=last (the final epoch), or carve a validation split: "
            "data.val_fraction=0.15 and, on a small store, data.min_val_subjects=0",
        )
    if choice == "best" and people < MEANINGFUL_VAL_SUBJECTS:
        rows = len(datamodule.rows("val"))
        log.warning(
            "the checkpoint is chosen on %d validation %s (%d rows): with fewer than %d, that "
            "choice is mostly noise; select=last keeps the final epoch instead",
            people,
            "person" if people == 1 else "people",
            rows,
            MEANINGFUL_VAL_SUBJECTS,
        )
    log.info("the tested checkpoint is the %s", "best on val" if choice == "best" else "last")
    return choice


def tested_checkpoint(trainer: L.Trainer, run_dir: Path, selection: str) -> str:
    """The checkpoint metrics.json reports and evaluation, prediction and export use."""
    if trainer.fast_dev_run:
        return ""
    last = run_dir / CHECKPOINT_DIR / LAST_FILE
    if selection == "last" and last.is_file():
        return str(last)
    callback = trainer.checkpoint_callback
    return (callback.best_model_path or "") if callback is not None else ""


def build_trainer(cfg: DictConfig, run_dir: Path, selection: str, validate: bool) -> L.Trainer:
    """The Trainer with the configured callbacks and loggers, and a progress bar or none.

    With select=last the monitored checkpoint is left out (last.ckpt is the model); without
    validation people the validation loop is off."""
    bar_callbacks, show_bar = progress_bar_callbacks(cfg.progress_bar)
    callbacks = [build(c) for c in cfg.get("callbacks", {}).values() if c] + bar_callbacks
    callbacks += [RandomState(), FiniteLoss()]
    if selection == "last":
        callbacks = [c for c in callbacks if not (isinstance(c, ModelCheckpoint) and c.monitor)]
    # MLflow 3 keeps its file store (logger=mlflow's default: no server, no database for
    # parallel jobs to contend on) in "maintenance mode" and refuses it unless this is set.
    os.environ.setdefault("MLFLOW_ALLOW_FILE_STORE", "true")
    loggers = [build(c) for c in cfg.get("logger", {}).values() if c]
    if not loggers:  # logger=none: the learning-rate monitor has nowhere to write and would fail
        callbacks = [c for c in callbacks if not isinstance(c, LearningRateMonitor)]
    extra: dict[str, Any] = {}
    if not validate:
        extra |= {"limit_val_batches": 0, "num_sanity_val_steps": 0}
    if cfg.data.get("baseline_resample"):  # the data module redraws references per epoch
        extra["reload_dataloaders_every_n_epochs"] = 1
    return build(
        cfg.trainer,
        logger=loggers or False,
        callbacks=callbacks,
        default_root_dir=str(run_dir),
        enable_progress_bar=show_bar,
        plugins=[AtomicCheckpointIO()],
        **extra,
    )
