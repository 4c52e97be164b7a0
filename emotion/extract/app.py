"""`emotion-extract`: a thin Hydra wrapper around `emotion.extract.pipeline.extract`."""

from __future__ import annotations

import logging
import sys
from typing import Any

import hydra
from omegaconf import DictConfig

from emotion import CONFIG_DIR
from emotion.errors import exit_on_user_error
from emotion.extract.landmarks import quiet_native_logs
from emotion.extract.pipeline import extract
from emotion.extract.settings import ExtractSettings

log = logging.getLogger(__name__)


@exit_on_user_error
def run(cfg: DictConfig) -> dict[str, Any]:
    """Settings from the config, then extract; Ctrl-C leaves a resumable `.partial`."""
    settings = ExtractSettings.from_config(cfg)
    try:
        return extract(settings)
    except KeyboardInterrupt:
        print(
            f"\ninterrupted: finished work is kept in {settings.store_path}.partial; "
            "rerun the same command to resume",
            file=sys.stderr,
        )
        sys.exit(130)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="extract")
def main(cfg: DictConfig) -> None:
    quiet_native_logs()
    run(cfg)


if __name__ == "__main__":
    main()
