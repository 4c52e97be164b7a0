"""`emotion-predict`: a thin argparse wrapper around `emotion.predict.pipeline.predict`.

emotion-predict outputs/train/runs/default photo.jpg folder/ photos.zip clip.mp4 -o preds.csv
emotion-predict outputs/train/runs/default photo.jpg > preds.csv     # no -o: standard output
emotion-predict path/to/best.ckpt clip.mp4 --video-stride 5 --ema-alpha 0.2 -o preds.jsonl
emotion-predict outputs/train/multiruns/seeds photo.jpg     # an ensemble: every run in it
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path
from typing import Any, NoReturn

from emotion.errors import EmotionError, counted, exit_on_user_error
from emotion.predict.pipeline import predict


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="emotion-predict",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument(
        "model",
        help="a run directory (the checkpoint its training tested, named in its metrics.json: "
        "the best on validation, or the last epoch) or a .ckpt file; a sweep folder or a "
        "quoted glob of runs is an ensemble (probabilities averaged)",
    )
    parser.add_argument("inputs", nargs="+", help="photos, videos, zip archives or folders")
    parser.add_argument(
        "-o",
        "--output",
        type=Path,
        default=None,
        help="rows as .csv or .jsonl, with a <output>.summary.json beside it; default (or -): "
        "rows to standard output, the summary line to standard error",
    )
    parser.add_argument(
        "--format", choices=("csv", "jsonl"), default=None, help="for standard output"
    )
    parser.add_argument("--batch-size", type=int, default=256, help="faces scored at once")
    parser.add_argument(
        "--reduce",
        default="auto",
        help="decode photos at 1/reduce scale (auto, 1, 2, 4, 8), as emotion-extract "
        "(default auto: the short side stays >= 480 px)",
    )
    parser.add_argument("--video-stride", type=int, default=1, help="every n-th frame")
    parser.add_argument(
        "--video-max-frames", type=int, default=100_000, help="frames read per video, at most"
    )
    parser.add_argument(
        "--ema-alpha",
        type=float,
        default=0.3,
        help="weight of the newest frame in the smoothed video track",
    )
    parser.add_argument(
        "--threshold",
        type=float,
        default=None,
        help="label positive when P(positive) >= this (see emotion-eval's "
        "operating point); default: argmax",
    )
    parser.add_argument(
        "--positive-class", default="anxious", help="the class --threshold applies to"
    )
    parser.add_argument(
        "--zip-encoding", default="cp949", help="file names in zip archives without the UTF-8 flag"
    )
    parser.add_argument("--threads", type=int, default=1, help="torch threads for the model")
    parser.add_argument(
        "--enroll",
        nargs="+",
        metavar="PHOTO",
        help="a personal-baseline model: rest-face photos of the person in the inputs "
        "(averaged into the reference; never scored)",
    )
    parser.add_argument(
        "--baseline",
        help="a personal-baseline model without --enroll: first:3s (per video, the median face "
        "of its first 3 s, held at rest; not scored) or session (per video, or over every photo "
        "given, the mean face)",
    )
    return parser.parse_args(argv)


def reader_went_away() -> NoReturn:
    """Standard output's reader stopped (`emotion-predict ... | head -3`): stop quietly, as
    Unix tools do, with the status a shell gives a command SIGPIPE ended (141): `head` got what
    it asked for, and `set -o pipefail` still tells the rows were cut short. Standard output
    becomes /dev/null first: Python flushes it at exit, which would fail a second time."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    sys.exit(128 + signal.SIGPIPE)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    output = None if args.output in (None, Path("-")) else args.output
    try:
        summary = run(args, output)
    except BrokenPipeError:
        reader_went_away()
    print(
        f"wrote {counted(summary['rows'], 'row')} to {summary['output']}: "
        f"{counted(summary['photos'], 'photo')}, {counted(summary['frames'], 'video frame')}, "
        f"{counted(summary['faces'], 'face')}, {summary['no_face']} without a face, "
        f"{summary['unreadable']} unreadable ({summary['seconds']:.1f} s)",
        file=sys.stderr,
    )
    missing = summary["missing_inputs"]
    if missing:
        raise EmotionError(
            f"{'an input does' if len(missing) == 1 else f'{len(missing)} inputs do'} not "
            f"exist: {', '.join(missing[:5])}"
            + (", ..." if len(missing) > 5 else "")
            + " (each is a row with status unreadable; every other input was predicted)",
            "check the paths",
        )


def run(args: argparse.Namespace, output: Path | None) -> dict[str, Any]:
    """`predict` with the command line's options; its summary."""
    return predict(
        args.model,
        args.inputs,
        output,
        row_format=args.format,
        batch_size=args.batch_size,
        reduce=args.reduce,
        video_stride=args.video_stride,
        video_max_frames=args.video_max_frames,
        ema_alpha=args.ema_alpha,
        threshold=args.threshold,
        positive_class=args.positive_class,
        zip_encoding=args.zip_encoding,
        threads=args.threads,
        enroll=args.enroll,
        baseline=args.baseline,
    )


if __name__ == "__main__":
    main(sys.argv[1:])
