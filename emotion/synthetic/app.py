"""`emotion-synth`: write a SYNTHETIC landmark store."""

from __future__ import annotations

import argparse
import logging
from dataclasses import fields
from pathlib import Path

from emotion.errors import EmotionError, exit_on_user_error
from emotion.store.files import check_writable
from emotion.synthetic.generate import generate_store
from emotion.synthetic.settings import SyntheticSettings

log = logging.getLogger(__name__)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    """`emotion-synth`: write a SYNTHETIC landmark store."""
    defaults = SyntheticSettings()
    parser = argparse.ArgumentParser(description="Write a SYNTHETIC FaceMesh landmark store.")
    parser.add_argument("--output", type=Path, default=Path("data/synthetic.h5"))
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --output")
    parser.add_argument("--subjects", type=int, default=defaults.num_subjects)
    parser.add_argument("--frames", type=int, default=defaults.frames_per_subject)
    parser.add_argument("--rows", type=int, default=None, help="exact total rows")
    parser.add_argument("--seed", type=int, default=defaults.seed)
    for knob in fields(SyntheticSettings):
        if knob.type == "float":
            parser.add_argument(
                "--" + knob.name.replace("_", "-"), type=float, default=getattr(defaults, knob.name)
            )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    floats = {
        knob.name: getattr(args, knob.name)
        for knob in fields(SyntheticSettings)
        if knob.type == "float"
    }
    settings = SyntheticSettings(
        num_subjects=args.subjects,
        frames_per_subject=args.frames,
        num_frames=args.rows,
        seed=args.seed,
        **floats,
    )
    check_output(args.output, args.overwrite)
    path = generate_store(args.output, settings)
    print(f"wrote {path}: SYNTHETIC landmarks (not real faces), seed {settings.seed}")


def check_output(output: Path, overwrite: bool) -> None:
    """Before generating: an existing store is replaced only when asked (it may be the one a
    run trained on), and a location that cannot be written fails now, not after the work."""
    if output.is_dir():
        raise EmotionError(f"--output {output} is a folder", "name a file, e.g. data/synthetic.h5")
    if (output.exists() or output.is_symlink()) and not overwrite:
        raise EmotionError(
            f"{output} exists",
            "pass --overwrite to replace it, or choose another --output",
        )
    check_writable(output, "choose an --output in a folder you can write")


if __name__ == "__main__":
    main()
