"""`emotion-predict` as a function: class probabilities for photos, folders, zip archives and
videos, one row per photo or sampled frame.

Landmarks come from the extractor's own worker (`emotion.facemesh.runner.FaceMeshRunner`: the
same upright, reduced-resolution decoding and FaceMesh graph), the features from the
checkpoint's own normalisation, and the model runs on batches of faces. Every photo and every
sampled video frame gets a row, with or without a face; unreadable items are rows too.

Videos are read, scored and written a batch of frames at a time (`FaceMeshRunner.video_chunks`), so
memory does not grow with a video's length; what must wait for every input (a session
reference) waits in a temporary file (`emotion.predict.spool`).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError, check_ranges
from emotion.facemesh.decode import parse_reduce
from emotion.facemesh.mesh import quiet_native_logs
from emotion.facemesh.runner import FaceMeshRunner
from emotion.inference.ensemble import load_model
from emotion.inference.face_model import FaceModel
from emotion.inference.threads import threads_check
from emotion.inference.trained import check_current_extractor, warn_synthetic
from emotion.predict.inputs import Inputs, collect_inputs, warn_skipped
from emotion.predict.predictor import Item, Predictor, items_of
from emotion.predict.reference import (
    PHOTOS,
    ReferencePlan,
    SessionReferences,
    VideoReference,
    assign_photos,
    parse_baseline,
    reference_plan,
)
from emotion.predict.spool import Spool
from emotion.predict.writer import FORMATS, RowWriter
from emotion.rundir import write_json_atomic, write_problem

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
    check_options(
        batch_size=batch_size,
        video_stride=video_stride,
        video_max_frames=video_max_frames,
        threads=threads,
        ema_alpha=ema_alpha,
        threshold=threshold,
    )
    if output is not None and output.is_dir():
        raise EmotionError(f"-o {output} is a folder", f"name a file in it, e.g. -o {output}/p.csv")
    if output is not None and (problem := write_problem(output.parent)):
        raise EmotionError(
            f"cannot write -o {output}: {problem}",
            "choose a folder you can write to (or make this one writable); nothing was predicted",
        )
    reduce = parse_reduce(reduce)
    trained = model_for_photos(model, threshold, positive_class)
    kind, seconds = parse_baseline(baseline)
    found = collect_inputs(inputs, zip_encoding)
    warn_skipped(found)
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
            run_inputs(predictor, runner, found, plan, output.parent if output else None)
            writer.finish()
    finally:
        runner.close()
    summary = {
        **run_summary(trained, predictor, writer, inputs, output, threshold),
        "reference": plan.kind if trained.preprocessing.uses_baseline else None,
        "skipped_not_regular": len(found.skipped),
        "seconds": round(time.perf_counter() - started, 3),
    }
    if output is not None:
        write_json_atomic(output.with_name(output.name + ".summary.json"), summary)
    return summary


def run_inputs(
    predictor: Predictor,
    runner: FaceMeshRunner,
    found: Inputs,
    plan: ReferencePlan,
    spool_folder: Path | None = None,
) -> None:
    """FaceMesh on every input, references assigned, rows written in input order; a video a
    batch of frames at a time."""
    predictor.add(
        [Item(source, None, False, "unreadable", why) for source, why in found.unreadable]
    )
    preprocessing = predictor.trained.preprocessing
    if plan.buffers_everything and predictor.uses_baseline:
        run_session(predictor, runner, found, SessionReferences(preprocessing), spool_folder)
        return
    for media in found.media:
        if not media.video:
            items = items_of(media, runner.run(media))
            if predictor.uses_baseline:
                assign_photos(plan, preprocessing, items)
            predictor.add(items)
            continue
        reference = VideoReference(plan, preprocessing, media.source)
        fps = None
        for outcome in runner.video_chunks(media, predictor.batch_size):
            items = items_of(media, outcome)
            fps = outcome.fps
            predictor.add(reference.assign(items, fps) if predictor.uses_baseline else items)
        if predictor.uses_baseline:
            predictor.add(reference.finish(fps))
    predictor.flush()


def run_session(
    predictor: Predictor,
    runner: FaceMeshRunner,
    found: Inputs,
    sessions: SessionReferences,
    spool_folder: Path | None,
) -> None:
    """`--baseline session`: every input is read first (its items parked on disk, its faces
    summed per session), then scored against its session's mean face, rows in input order."""
    with Spool(spool_folder) as spool:
        for number, media in enumerate(found.media):
            key = number if media.video else PHOTOS
            chunks = (
                runner.video_chunks(media, predictor.batch_size)
                if media.video
                else iter([runner.run(media)])
            )
            for outcome in chunks:
                items = items_of(media, outcome)
                sessions.add(key, items)
                spool.put((key, items))
        for key, items in spool.drain():
            sessions.give(key, items)
            predictor.add(items)
    predictor.flush()


def run_summary(
    trained: FaceModel,
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
) -> FaceModel:
    """The model (or ensemble), refused when a photo alone cannot be scored with it."""
    trained = load_model(str(model) if isinstance(model, Path) else model)
    check_current_extractor(trained)
    if trained.trained_on_synthetic:
        warn_synthetic(trained.description)
    if threshold is not None and positive_class not in trained.class_names:
        raise EmotionError(
            f"--positive-class {positive_class!r} is not one of {trained.class_names}"
        )
    return trained


def check_options(
    *,
    batch_size: int,
    video_stride: int,
    video_max_frames: int,
    threads: int,
    ema_alpha: float,
    threshold: float | None,
) -> None:
    """Refuse options that would crash later or silently label every face the same (a
    threshold of NaN or above 1 makes every face the other class), before any work."""
    checks = (
        ("--batch-size", batch_size, batch_size >= 1, "1 or more, e.g. 256"),
        ("--video-stride", video_stride, video_stride >= 1, "1 (every frame) or more"),
        ("--video-max-frames", video_max_frames, video_max_frames >= 1, "1 or more"),
        threads_check("--threads", threads),
        ("--ema-alpha", ema_alpha, 0.0 < ema_alpha <= 1.0, "a weight in (0, 1], e.g. 0.3"),
        (
            "--threshold",
            threshold,
            threshold is None or 0.0 <= threshold <= 1.0,
            "a probability in [0, 1] (emotion-eval's operating point), or leave it out",
        ),
    )
    check_ranges(checks)


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
