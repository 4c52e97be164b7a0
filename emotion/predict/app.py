"""`emotion-predict`: class probabilities for photos, folders, zip archives and videos.

    emotion-predict outputs/train/runs/default photo.jpg folder/ photos.zip clip.mp4 -o preds.csv
    emotion-predict path/to/best.ckpt clip.mp4 --video-stride 5 --ema-alpha 0.2 -o preds.jsonl
    emotion-predict outputs/train/multiruns/seeds photo.jpg     # an ensemble: every run in it

Landmarks come from the extractor's own worker (`emotion.extract.landmarks.TaskRunner`: the
same upright, reduced-resolution decoding and FaceMesh graph), the features from the
checkpoint's own normalisation, and the model runs on batches of faces. Every photo and every
sampled video frame gets a row, with or without a face; unreadable items are rows too.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotion.ensemble import Ensemble, load_model
from emotion.errors import EmotionError, exit_on_user_error
from emotion.extract.decode import parse_reduce
from emotion.extract.landmarks import Outcome, TaskRunner, quiet_native_logs
from emotion.extract.plan import Task
from emotion.predict.inputs import collect_inputs
from emotion.predict.smoothing import VideoTrack
from emotion.predict.writer import FORMATS, RowWriter
from emotion.trained import TrainedModel, check_photo_ready

log = logging.getLogger(__name__)

FRAME_SUFFIX = re.compile(r"#frame=(\d+)$")


@contextmanager
def torch_threads(count: int) -> Iterator[None]:
    """Run the model on `count` threads, then restore. One thread by default: the batches are
    small next to FaceMesh's work, and several OpenMP threads on cores that FaceMesh's own
    thread pool (or another job) keeps busy stall each other at every barrier."""
    previous = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@dataclass
class Item:
    """One photo or video frame on its way to a row."""

    source: str
    frame: int | None
    video: bool
    status: str  # ok | no_face | unreadable
    error: str | None = None
    landmarks: np.ndarray | None = None
    image_size: tuple[int, int] | None = None


def items_of(task: Task, outcome: Outcome) -> list[Item]:
    """The extractor's outcome as items, video frames in frame order."""

    def split(source: str) -> tuple[str, int | None]:
        match = FRAME_SUFFIX.search(source)
        if not task.video or match is None:
            return source, None
        return source[: match.start()], int(match.group(1))

    items = []
    for source, coords, size in outcome.rows:
        name, frame = split(source)
        items.append(Item(name, frame, task.video, "ok", landmarks=coords, image_size=size))
    for source in outcome.no_face:
        name, frame = split(source)
        items.append(Item(name, frame, task.video, "no_face"))
    for source, why in outcome.undecodable:
        name, frame = split(source)
        items.append(Item(name, frame, task.video, "unreadable", error=why))
    return sorted(items, key=lambda item: -1 if item.frame is None else item.frame)


class Predictor:
    """Batches faces through the model and writes rows in input order."""

    def __init__(
        self,
        trained: TrainedModel | Ensemble,
        writer: RowWriter,
        *,
        batch_size: int,
        ema_alpha: float,
        threshold: float | None,
        positive_class: str,
        threads: int = 1,
    ) -> None:
        self.trained = trained
        self.threads = threads
        self.writer = writer
        self.batch_size = batch_size
        self.ema_alpha = ema_alpha
        self.threshold = threshold
        self.positive = trained.class_names.index(positive_class) if threshold is not None else 0
        self.pending: list[Item] = []
        self.tracks: dict[str, VideoTrack] = {}
        self.counts = {"photos": 0, "frames": 0, "faces": 0, "no_face": 0, "unreadable": 0}
        self.model_seconds = 0.0

    def add(self, items: list[Item]) -> None:
        self.pending.extend(items)
        if sum(item.landmarks is not None for item in self.pending) >= self.batch_size:
            self.flush()

    def label(self, probabilities: np.ndarray) -> str:
        """argmax, or with a threshold: positive when P(positive) >= threshold."""
        names = self.trained.class_names
        if self.threshold is None:
            return names[int(np.argmax(probabilities))]
        if probabilities[self.positive] >= self.threshold:
            return names[self.positive]
        others = probabilities.copy()
        others[self.positive] = -1.0
        return names[int(np.argmax(others))]

    def flush(self) -> None:
        faces = [item for item in self.pending if item.landmarks is not None]
        probabilities = np.empty((0, len(self.trained.class_names)))
        if faces:
            started = time.perf_counter()
            landmarks = np.stack([item.landmarks for item in faces])  # type: ignore[misc]
            sizes = np.asarray([item.image_size for item in faces], dtype=np.int32)
            features = self.trained.features(landmarks, sizes)
            with torch_threads(self.threads):
                probabilities = self.trained.probabilities(features, self.batch_size).numpy()
            self.model_seconds += time.perf_counter() - started
        scores = iter(probabilities)
        for item in self.pending:
            self.writer.write(self.row(item, next(scores) if item.landmarks is not None else None))
        self.writer.flush()
        self.pending = []

    def row(self, item: Item, probabilities: np.ndarray | None) -> dict[str, Any]:
        names = self.trained.class_names
        self.counts["frames" if item.video else "photos"] += 1
        self.counts[{"ok": "faces"}.get(item.status, item.status)] += 1
        row: dict[str, Any] = {
            "source": item.source,
            "frame": item.frame,
            "face": item.status == "ok",
            "status": item.status,
            "error": item.error,
        }
        if probabilities is not None:
            row.update(
                {f"p_{n}": round(float(p), 6) for n, p in zip(names, probabilities, strict=True)}
            )
            row["label"] = self.label(probabilities)
        if item.video:
            track = self.tracks.setdefault(item.source, VideoTrack(names, self.ema_alpha))
            smoothed = track.update(probabilities, item.status)
            if smoothed is not None:
                row.update(
                    {
                        f"smoothed_p_{n}": round(float(p), 6)
                        for n, p in zip(names, smoothed, strict=True)
                    }
                )
                row["smoothed_label"] = self.label(smoothed)
        return row


def predict(
    model: Path | str | Sequence[str],
    inputs: list[str],
    output: Path,
    *,
    batch_size: int = 256,
    reduce: int | str = "auto",
    video_stride: int = 1,
    video_max_frames: int = 100_000,
    ema_alpha: float = 0.3,
    threshold: float | None = None,
    positive_class: str = "anxious",
    zip_encoding: str = "cp949",
    threads: int = 1,
) -> dict[str, Any]:
    """Write one row per photo/frame to `output` and a summary beside it; return the summary."""
    if output.suffix.lower() not in FORMATS:
        raise EmotionError(f"output {output} must end in one of {FORMATS}", "e.g. -o preds.csv")
    if not 0.0 < ema_alpha <= 1.0:
        raise EmotionError(f"--ema-alpha {ema_alpha} must lie in (0, 1]", "e.g. 0.3")
    reduce = parse_reduce(reduce)
    trained = load_model(str(model) if isinstance(model, Path) else model)
    check_photo_ready(trained)
    if threshold is not None and positive_class not in trained.class_names:
        raise EmotionError(
            f"--positive-class {positive_class!r} is not one of {trained.class_names}"
        )
    found = collect_inputs(inputs, zip_encoding)
    if not found.tasks and not found.unreadable:
        raise EmotionError(
            f"no photos, videos or zip archives in {inputs}",
            "pass .jpg/.jpeg/.png photos, .mp4/.avi videos, .zip archives or folders of them",
        )
    started = time.perf_counter()
    quiet_native_logs()
    runner = TaskRunner(reduce=reduce, video_stride=video_stride, video_max_frames=video_max_frames)
    try:
        with RowWriter(output, trained.class_names) as writer:
            predictor = Predictor(
                trained,
                writer,
                batch_size=batch_size,
                ema_alpha=ema_alpha,
                threshold=threshold,
                positive_class=positive_class,
                threads=threads,
            )
            predictor.add(
                [
                    Item(source, None, False, "unreadable", error=why)
                    for source, why in found.unreadable
                ]
            )
            for task in found.tasks:
                predictor.add(items_of(task, runner.run(task)))
            predictor.flush()
    finally:
        runner.close()
    seconds = time.perf_counter() - started
    summary = {
        "checkpoint": trained.description,
        "ensemble": [str(path) for path in trained.checkpoints]
        if len(trained.checkpoints) > 1
        else None,
        "output": str(output),
        "rows": writer.rows,
        "class_names": trained.class_names,
        "threshold": threshold,
        **predictor.counts,
        "videos": {source: track.summary() for source, track in predictor.tracks.items()},
        "seconds": round(seconds, 3),
        "model_seconds": round(predictor.model_seconds, 4),
    }
    output.with_name(output.name + ".summary.json").write_text(
        json.dumps(summary, indent=2, ensure_ascii=False) + "\n"
    )
    return summary


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
        default=Path("predictions.csv"),
        help="rows as .csv or .jsonl (default predictions.csv); a "
        "<output>.summary.json goes beside it",
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
    return parser.parse_args(argv)


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    summary = predict(
        args.model,
        args.inputs,
        args.output,
        batch_size=args.batch_size,
        reduce=args.reduce,
        video_stride=args.video_stride,
        video_max_frames=args.video_max_frames,
        ema_alpha=args.ema_alpha,
        threshold=args.threshold,
        positive_class=args.positive_class,
        zip_encoding=args.zip_encoding,
        threads=args.threads,
    )
    print(
        f"wrote {summary['rows']} rows to {summary['output']}: {summary['photos']} photos, "
        f"{summary['frames']} video frames, {summary['faces']} faces, {summary['no_face']} "
        f"without a face, {summary['unreadable']} unreadable ({summary['seconds']:.1f} s)"
    )


if __name__ == "__main__":
    main(sys.argv[1:])
