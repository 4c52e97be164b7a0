"""A tiny trained run for the evaluation, prediction and export tests (about 3 s, CPU)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
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
    """conf/eval.yaml composed with overrides, as `emotion-eval` would."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(config_name="eval", overrides=list(overrides))
