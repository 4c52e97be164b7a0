"""A run's directory name from its command line: the same command finds the same directory.

Registered as the `run_name` resolver that emotion/conf/train.yaml's `run_name` uses, on
import (the training command imports it before Hydra composes). The name lists the
overrides as `key=value` joined by commas, sorted, without the keys that do not change what
is trained; a path becomes its file's stem (`data.path=aihub_sample`), never a folder name
spelled out. A sweep job's name lists only what the sweep varies (`data.fold=0,seed=1`):
`emotion-train -m` names those keys in SWEEP_KEYS for every job, whichever process or node
runs it. Whatever a name leaves out or shortens, a digest of the full overrides follows, so
two different runs never share a directory.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence

from hydra.core.override_parser.overrides_parser import OverridesParser
from omegaconf import OmegaConf

DIGEST = 8
# Set by emotion-train -m (emotion.training.precheck): the keys the sweep varies, by commas.
SWEEP_KEYS = "EMOTION_SWEEP_KEYS"
# Values read as file names even without a folder (`data.path=x.h5`).
FILE_SUFFIXES = (".h5", ".hdf5", ".ckpt", ".onnx", ".json", ".csv", ".yaml")


def readable(value: str) -> str:
    """A path's stem (`data/x.h5` -> `x`); other values as they are."""
    if "/" not in value and "\\" not in value and not value.endswith(FILE_SUFFIXES):
        return value
    last = value.replace("\\", "/").rstrip("/").rsplit("/", 1)[-1]
    stem = last.rsplit(".", 1)[0] if "." in last[1:] else last
    return stem or "root"


def run_name_from_overrides(
    overrides: Sequence[str], exclude: Sequence[str] = (), limit: int = 150
) -> str:
    """A directory name from the command-line overrides: same command, same directory."""
    parsed = OverridesParser.create().parse_overrides([str(item) for item in overrides])
    # A key given twice is set by its last value, as Hydra sets it: named once, by that value.
    last = {
        item.get_key_element(): item.get_value_element_as_str()
        for item in parsed
        if item.key_or_group not in set(exclude)
    }
    # Sorted as Hydra sorts its override_dirname: `data.fold=0,...` before `data=store`.
    items = sorted(last.items(), key=lambda pair: f"{pair[0]}={pair[1]}")
    if not items:
        return "default"
    full = ",".join(f"{key}={value}" for key, value in items)
    varied = set(filter(None, os.environ.get(SWEEP_KEYS, "").split(",")))
    shown = [(key, value) for key, value in items if key.lstrip("+~") in varied] or items
    name = ",".join(f"{key}={readable(value)}" for key, value in shown)
    if name != full:
        name = f"{name}-{hashlib.sha1(full.encode()).hexdigest()[:DIGEST]}"
    if len(name) > limit:
        digest = hashlib.sha1(full.encode()).hexdigest()[:10]
        name = f"{name[: limit - 11]}-{digest}"
    return name.replace("/", "_")


OmegaConf.register_new_resolver("run_name", run_name_from_overrides, replace=True)
