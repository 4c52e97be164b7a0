"""`emotion-export`: a thin argparse wrapper around `emotion.export.onnx.export`.

emotion-export outputs/train/runs/default                 # -> <run_dir>/export/model.onnx
emotion-export path/to/best.ckpt --output model.onnx --torch-export
emotion-export outputs/train/multiruns/seeds              # ensemble -> <sweep>/export/...
emotion-export outputs/train/runs/default --web site      # a static page that needs no server
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emotion.errors import EmotionError, exit_on_user_error
from emotion.export.web import describe, export_web


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="emotion-export", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model",
        nargs="+",
        help="a run directory (its best checkpoint) or a .ckpt file; several, a sweep folder "
        "or a quoted glob make one ensemble graph (probabilities averaged)",
    )
    parser.add_argument("--output", type=Path, help="default: <run_dir>/export/model.onnx")
    parser.add_argument("--torch-export", action="store_true", help="also write a .pt2")
    parser.add_argument(
        "--tolerance",
        type=float,
        help="the largest |onnxruntime - torch| probability kept (default 1e-5)",
    )
    parser.add_argument(
        "--web",
        type=Path,
        metavar="DIR",
        help="write a static page into DIR instead: the model, FaceLandmarker and their "
        "browser runtimes; any static host serves it, and it scores on the device",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="with --web: replace a DIR that is not empty"
    )
    return parser.parse_args(argv)


def tolerance(args: argparse.Namespace) -> dict[str, float]:
    """--tolerance when given; the export's own default otherwise (its module imports torch,
    seconds that a refusal need not wait)."""
    return {} if args.tolerance is None else {"tolerance": args.tolerance}


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    if args.web is not None:
        if args.output is not None or args.torch_export:
            raise EmotionError(
                "--web writes its own model.onnx into DIR; --output and --torch-export do not "
                "apply to it",
                "run emotion-export twice: once with --web DIR, once with --output/--torch-export",
            )
        print(
            describe(export_web(args.model, args.web, overwrite=args.overwrite, **tolerance(args)))
        )
        return
    if args.overwrite:
        raise EmotionError("--overwrite goes with --web DIR", "add --web DIR, or drop --overwrite")
    from emotion.export.onnx import export  # torch: seconds to import

    info = export(args.model, args.output, with_torch_export=args.torch_export, **tolerance(args))
    print(
        f"wrote {info['onnx']} ({info['onnx_bytes'] / 2**20:.2f} MiB); onnxruntime vs torch: "
        f"max |diff| {info['check']['max_abs_difference']:.1e} <= {info['check']['tolerance']:.0e}"
    )
    if "torch_export" in info:
        print(f"wrote {info['torch_export']} ({info['torch_export_bytes'] / 2**20:.2f} MiB)")


if __name__ == "__main__":
    main(sys.argv[1:])
