"""`emotion-extract` (a thin Hydra wrapper around `emotion.extract.pipeline.extract`) and
`emotion-extract-merge` (argparse, around `emotion.extract.merge.merge`)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig

from emotion import CONFIG_DIR, compose
from emotion.errors import exit_on_user_error
from emotion.extract import config as _extract_schema  # noqa: F401  (registers extract_schema)
from emotion.extract.merge import merge
from emotion.extract.pipeline import extract
from emotion.extract.settings import ExtractSettings
from emotion.facemesh.mesh import quiet_native_logs

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
def hydra_main(cfg: DictConfig) -> None:
    quiet_native_logs()
    run(cfg)


@exit_on_user_error
def main() -> None:
    """`emotion-extract`: the command line composed first (`emotion.compose`), so a key that
    does not compose is error:/fix: naming it before Hydra's main writes anything."""
    argv = sys.argv[1:]
    if not compose.hydra_flag(argv) and "-m" not in argv and "--multirun" not in argv:
        compose.composed(
            "extract",
            [arg for arg in argv if not arg.startswith("-")],
            "check the key and its value against docs/extraction.md (emotion-extract --cfg job "
            "prints the composed config), e.g. emotion-extract source.root=DIR output=FILE.h5",
        )
    hydra_main()


@exit_on_user_error
def merge_main(argv: list[str] | None = None) -> None:
    """`emotion-extract-merge OUTPUT [SHARD ...]`: join one run's shard files into one store."""
    parser = argparse.ArgumentParser(
        prog="emotion-extract-merge",
        description="Join the shard files of one emotion-extract run into one store.",
    )
    parser.add_argument("output", type=Path, help="the store to write, e.g. data/aihub82.h5")
    parser.add_argument(
        "shards", type=Path, nargs="*", help="shard files (default: OUTPUT's shard-*-of-* files)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing output")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    merge(args.output, args.shards or None, overwrite=args.overwrite)


if __name__ == "__main__":
    main()
