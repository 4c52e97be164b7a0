"""A tiny trained run for the evaluation, prediction and export tests (about 3 s, CPU), and
`emotion-train` run in this process: a subprocess pays 5 s of imports before it reads its
first override."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.core.hydra_config import HydraConfig
from omegaconf import DictConfig, open_dict

from emotion.training.train import train
from tests.conftest import CONF_DIR, small_overrides


def train_tiny(store: Path, run_dir: Path, *extra: str) -> dict[str, Any]:
    """Train one epoch of a tiny model into run_dir; returns training's metrics.json."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=small_overrides(store, run_dir, *extra))
    with open_dict(cfg):
        cfg.run_name = "test"
    return train(cfg)


def eval_config(*overrides: str) -> DictConfig:
    """conf/eval.yaml composed with overrides and checked, as `emotion-eval` does; a
    `run_dir=` or `ckpt_path=` among them is the command's first argument (the model)."""
    from emotion.evaluate.settings import MODEL_KEYS, compose_eval_config

    models = [
        o.split("=", 1)[1].strip("'\"") for o in overrides if o.split("=", 1)[0] in MODEL_KEYS
    ]
    settings = [o for o in overrides if o.split("=", 1)[0] not in MODEL_KEYS]
    GlobalHydra.instance().clear()
    return compose_eval_config(models[0] if models else None, settings)


def train_command(run_dir: Path, *overrides: str) -> int:
    """`emotion-train <overrides>` in this process; returns its exit status, and what the user
    would read is on sys.stderr (capture it with capsys).

    The same two steps as the console script, without the 5 s of imports a subprocess pays:
    the pre-Hydra check composes conf/train.yaml (emotion.training.precheck), then
    `emotion.training.app.run(cfg)`; either turns an EmotionError into `error:`/`fix:` and
    exit 2. Only the run directory differs: Hydra's main names it after the overrides, here it
    is run_dir."""
    from emotion.errors import exit_on_user_error
    from emotion.training.app import run
    from emotion.training.precheck import check_names, composed

    @exit_on_user_error
    def checked() -> DictConfig:
        cfg = composed(full)
        check_names(cfg)
        return cfg

    GlobalHydra.instance().clear()
    full = [*overrides, f"paths.run_dir={run_dir}"]
    try:
        cfg = checked()
    except SystemExit as exit_:
        return int(exit_.code or 0)
    with open_dict(cfg):
        cfg.run_name = "test"
        cfg.pop("hydra")
    try:
        run(cfg)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    return 0


def hydra_main(main: Callable[[], Any], *argv: str) -> None:
    """A console script's `@hydra.main` function run in this process as `<script> <argv>`,
    from the current directory: the same parsing, composition, launcher, run directories and
    log files as the command. A failed job ends it in SystemExit(1) after Hydra's report, as
    the command exits; the logging Hydra configures for its jobs is undone afterwards."""
    with mock.patch.object(sys, "argv", [main.__module__, *argv]), logging_put_back():
        try:
            main()
        finally:
            HydraConfig.instance().cfg = None  # the last job's; later compose() calls set none
            GlobalHydra.instance().clear()


@contextmanager
def logging_put_back() -> Iterator[None]:
    """Put every logger's level, handlers and flags back as they were, and close the handlers
    added meanwhile: Hydra's job logging replaces the root handlers with one on this test's
    standard output (closed after the test) and one on the job's log file."""

    def loggers() -> list[logging.Logger]:
        named = logging.Logger.manager.loggerDict.values()
        return [logging.getLogger(), *(item for item in named if isinstance(item, logging.Logger))]

    saved = {
        logger.name: (logger.level, list(logger.handlers), logger.propagate, logger.disabled)
        for logger in loggers()
    }
    kept = {id(handler) for _, handlers, _, _ in saved.values() for handler in handlers}
    try:
        yield
    finally:
        for logger in loggers():
            for handler in logger.handlers:
                if id(handler) not in kept:
                    handler.close()
            level, handlers, propagate, disabled = saved.get(
                logger.name, (logging.NOTSET, [], True, False)
            )
            logger.setLevel(level)
            logger.handlers[:] = handlers
            logger.propagate, logger.disabled = propagate, disabled
