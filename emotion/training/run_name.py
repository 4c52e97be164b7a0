"""A run's directory name from its command line: the same command finds the same directory.

Registered as the `run_name` resolver that emotion/conf/hydra/default.yaml's run and sweep
directories use, on import (the training command imports it before Hydra composes).
"""

from __future__ import annotations

import hashlib

from omegaconf import OmegaConf


def run_name_from_overrides(override_dirname: str, limit: int = 150) -> str:
    """A directory name from the command-line overrides: same command, same directory."""
    if not override_dirname:
        return "default"
    name = override_dirname.replace("/", "_")
    if len(name) > limit:
        digest = hashlib.sha1(name.encode()).hexdigest()[:10]
        name = f"{name[: limit - 11]}-{digest}"
    return name


OmegaConf.register_new_resolver("run_name", run_name_from_overrides, replace=True)
