"""`emotion-predict`: class probabilities for photos, folders, zip archives and videos.

    emotion-predict outputs/train/runs/default photo.jpg folder/ photos.zip clip.mp4 -o preds.csv
    emotion-predict outputs/train/runs/default photo.jpg > preds.csv     # no -o: standard output
    emotion-predict path/to/best.ckpt clip.mp4 --video-stride 5 --ema-alpha 0.2 -o preds.jsonl
    emotion-predict outputs/train/multiruns/seeds photo.jpg     # an ensemble: every run in it

Landmarks come from the extractor's own worker (`emotion.facemesh.runner.FaceMeshRunner`: the
same upright, reduced-resolution decoding and FaceMesh graph), the features from the
checkpoint's own normalisation, and the model runs on batches of faces. Every photo and every
sampled video frame gets a row, with or without a face; unreadable items are rows too.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError, exit_on_user_error
from emotion.facemesh.decode import parse_reduce
from emotion.facemesh.mesh import quiet_native_logs
from emotion.facemesh.runner import FaceMeshRunner
from emotion.inference.ensemble import Ensemble, load_model
from emotion.inference.trained import TrainedModel, warn_synthetic
from emotion.predict.inputs import Inputs, collect_inputs
from emotion.predict.predictor import Item, Predictor, items_of
from emotion.predict.reference import (
    ReferencePlan,
    assign_photos,
    assign_video,
    parse_baseline,
    reference_plan,
)
from emotion.predict.writer import FORMATS, RowWriter
from emotion.rundir import write_json_atomic

log = logging.getLogger(__name__)


def predict(
    model: Path | str | Sequence[str],
    inputs: list[str],
    output: Path | None,
    *,
    row_format: str | None = None,
    batch_size: int = 256,
    reduce: int | str = "auto",
    video_stride: int = 1,
    video_max_frames: int = 100_000,
    ema_alpha: float = 0.3,
    threshold: float | None = None,
    positive_class: str = "anxious",
    zip_encoding: str = "cp949",
    threads: int = 1,
    enroll: list[str] | None = None,
    baseline: str | None = None,
) -> dict[str, Any]:
    """Write one row per photo/frame to `output` (None: standard output) and, for a file, a
    summary beside it; return the summary. Inputs that do not exist are rows too, and are
    listed under `missing_inputs` for the caller to fail on. A personal-baseline model reads
    every face against a reference: `enroll` photos, or `baseline` ("first:3s", "session")."""
    row_format = output_format(output, row_format)
    if not 0.0 < ema_alpha <= 1.0:
        raise EmotionError(f"--ema-alpha {ema_alpha} must lie in (0, 1]", "e.g. 0.3")
    reduce = parse_reduce(reduce)
    trained = model_for_photos(model, threshold, positive_class)
    kind, seconds = parse_baseline(baseline)
    found = collect_inputs(inputs, zip_encoding)
    if not found.media and not found.unreadable:
        raise EmotionError(
            f"no photos, videos or zip archives in {inputs}",
            "pass .jpg/.jpeg/.png photos, .mp4/.avi videos, .zip archives or folders of them",
        )
    started = time.perf_counter()
    quiet_native_logs()
    runner = FaceMeshRunner(
        reduce=reduce, video_stride=video_stride, video_max_frames=video_max_frames
    )
    try:
        plan = reference_plan(trained, runner, enroll or [], kind, seconds, zip_encoding)
        with RowWriter(output, trained.class_names, row_format) as writer:
            predictor = Predictor(
                trained,
                writer,
                batch_size=batch_size,
                ema_alpha=ema_alpha,
                threshold=threshold,
                positive_class=positive_class,
                threads=threads,
            )
            run_inputs(predictor, runner, found, plan)
            writer.finish()
    finally:
        runner.close()
    summary = {
        **run_summary(trained, predictor, writer, inputs, output, threshold),
        "reference": plan.kind if trained.preprocessing.uses_baseline else None,
        "seconds": round(time.perf_counter() - started, 3),
    }
    if output is not None:
        write_json_atomic(output.with_name(output.name + ".summary.json"), summary)
    return summary


def run_inputs(
    predictor: Predictor, runner: FaceMeshRunner, found: Inputs, plan: ReferencePlan
) -> None:
    """FaceMesh on every input, references assigned, rows written in input order."""
    preprocessing = predictor.trained.preprocessing
    hold = plan.buffers_everything and preprocessing.uses_baseline
    predictor.add(
        [Item(source, None, False, "unreadable", why) for source, why in found.unreadable]
    )
    photos: list[Item] = []
    for media in found.media:
        outcome = runner.run(media)
        items = items_of(media, outcome)
        if preprocessing.uses_baseline and media.video:
            assign_video(plan, preprocessing, items, outcome.fps)
        elif preprocessing.uses_baseline:
            photos += items
            assign_photos(plan, preprocessing, items)
        predictor.add(items, hold=hold)
    if hold:
        assign_photos(plan, preprocessing, photos)  # the session: every photo given
    predictor.flush()


def run_summary(
    trained: TrainedModel | Ensemble,
    predictor: Predictor,
    writer: RowWriter,
    inputs: list[str],
    output: Path | None,
    threshold: float | None,
) -> dict[str, Any]:
    """The `<output>.summary.json` of a run: the model, the counts, per-video summaries."""
    return {
        "checkpoint": trained.description,
        "ensemble": [str(path) for path in trained.checkpoints]
        if len(trained.checkpoints) > 1
        else None,
        "output": str(output) if output else "-",
        "rows": writer.rows,
        "class_names": trained.class_names,
        "trained_on_synthetic": trained.trained_on_synthetic,
        "missing_inputs": [given for given in inputs if not Path(given).exists()],
        "threshold": threshold,
        **predictor.counts,
        "videos": {source: track.summary() for source, track in predictor.tracks.items()},
        "model_seconds": round(predictor.model_seconds, 4),
    }


def model_for_photos(
    model: Path | str | Sequence[str], threshold: float | None, positive_class: str
) -> TrainedModel | Ensemble:
    """The model (or ensemble), refused when a photo alone cannot be scored with it."""
    trained = load_model(str(model) if isinstance(model, Path) else model)
    if trained.trained_on_synthetic:
        warn_synthetic(trained.description)
    if threshold is not None and positive_class not in trained.class_names:
        raise EmotionError(
            f"--positive-class {positive_class!r} is not one of {trained.class_names}"
        )
    return trained


def output_format(output: Path | None, row_format: str | None) -> str:
    """`.csv` or `.jsonl`: the output's suffix, else --format (csv on standard output)."""
    chosen = (output.suffix.lower() if output else None) or row_format or ".csv"
    chosen = chosen if chosen.startswith(".") else f".{chosen}"
    if chosen not in FORMATS:
        raise EmotionError(
            f"output {output or '-'} must end in one of {FORMATS}",
            "e.g. -o preds.csv, or --format jsonl for standard output",
        )
    if output is not None and row_format and f".{row_format.lstrip('.')}" != chosen:
        raise EmotionError(f"--format {row_format} contradicts the output name {output}")
    return chosen


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="emotion-predict", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "model",
        help="a run directory (its best checkpoint) or a .ckpt file; a sweep folder or a quoted "
        "glob of runs is an ensemble (probabilities averaged)",
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
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument(
        "--reduce",
        default="auto",
        help="decode photos at 1/reduce scale (auto, 1, 2, 4, 8), as emotion-extract "
        "(default auto: the short side stays >= 480 px)",
    )
    parser.add_argument("--video-stride", type=int, default=1, help="every n-th frame")
    parser.add_argument("--video-max-frames", type=int, default=100_000)
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
    parser.add_argument("--positive-class", default="anxious")
    parser.add_argument("--zip-encoding", default="cp949")
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


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    output = None if args.output in (None, Path("-")) else args.output
    summary = predict(
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
    print(
        f"wrote {summary['rows']} rows to {summary['output']}: {summary['photos']} photos, "
        f"{summary['frames']} video frames, {summary['faces']} faces, {summary['no_face']} "
        f"without a face, {summary['unreadable']} unreadable ({summary['seconds']:.1f} s)",
        file=sys.stderr,
    )
    missing = summary["missing_inputs"]
    if missing:
        raise EmotionError(
            f"{len(missing)} of the inputs do not exist: {', '.join(missing[:5])}"
            + (", ..." if len(missing) > 5 else "")
            + " (each is a row with status unreadable; every other input was predicted)",
            "check the paths",
        )


if __name__ == "__main__":
    main(sys.argv[1:])
