"""Where an evaluation lands by default: one folder per model and settings, so no evaluation
silently replaces another's report.

    <run>/eval                              the default settings (split=test, ...)
    <run>/eval-split=val                    other settings: named after them, as runs are
    <run>/eval-threshold.target_recall=0.9
    <sweep>/eval-ensemble-<digest>          an ensemble: a digest of its members

The same command lands in the same folder (its report replaced by an identical one); settings
that change what is scored or reported never share a folder. Settings that change where or
how the files are written (output_dir, tensorboard) or only how precise the intervals are
(bootstrap.*: the same scores, resampled more or less often) do not name a folder.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from emotion.inference.face_model import FaceModel
from emotion.training.run_name import readable

# Keys that choose the model, the files or the intervals' precision, not what is scored.
NOT_SETTINGS = ("run_dir", "ckpt_path", "output_dir", "tensorboard", "bootstrap")
DIGEST = 8
LONGEST = 120


def flat(node: Any, prefix: str = "") -> dict[str, Any]:
    """A nested mapping as `a.b: value` pairs."""
    if not isinstance(node, dict):
        return {prefix: node}
    pairs: dict[str, Any] = {}
    for key, value in node.items():
        pairs |= flat(value, f"{prefix}{key}." if isinstance(value, dict) else f"{prefix}{key}")
    return pairs


def changed_settings(cfg: DictConfig) -> list[str]:
    """`key=value` for each setting that differs from eval.yaml's default, sorted."""
    from emotion.evaluate.settings import compose_eval_config

    default = flat(OmegaConf.to_container(compose_eval_config(None, []), resolve=True))
    given = flat(OmegaConf.to_container(cfg, resolve=True))
    return sorted(
        f"{key}={readable(str(value))}"
        for key, value in given.items()
        if key.split(".")[0] not in NOT_SETTINGS and default.get(key) != value
    )


def digest(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()[:DIGEST]


def evaluation_folder(trained: FaceModel, cfg: DictConfig) -> Path:
    """The default output folder of this model's evaluation under these settings."""
    home = trained.run_dir
    if home is None:
        home = trained.checkpoints[0].resolve().parent
    name = "eval"
    if trained.is_ensemble:
        members = sorted(os.path.relpath(path.resolve(), home) for path in trained.checkpoints)
        name = f"eval-ensemble-{digest(','.join(members))}"
    settings = ",".join(changed_settings(cfg))
    if settings:
        shown = settings if len(settings) <= LONGEST else settings[: LONGEST - DIGEST - 1]
        suffix = shown if shown == settings else f"{shown}-{digest(settings)}"
        name = f"{name}-{suffix}".replace("/", "_")
    return home / name
