"""From FaceMesh outcomes to output rows: faces batched through the model, rows in input
order, video frames smoothed per video."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from emotion.facemesh.media import Media, Outcome
from emotion.inference.face_model import FaceModel
from emotion.predict.smoothing import VideoTrack
from emotion.predict.writer import RowWriter

PENDING_BATCHES = 4  # items held, faces or not, before they are written regardless


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


def face_probabilities(
    trained: FaceModel,
    faces: Sequence[Any],
    reference: np.ndarray | None = None,
    batch_size: int = 256,
    threads: int = 1,
) -> np.ndarray:
    """(N, C) probabilities of face-like items (`landmarks`, `image_size`, `blendshapes`,
    `pose`), read against `reference` ((D,) or (N, D) face vectors) by a baseline model: the
    one face-to-probabilities step of `emotion-predict` and the Python API (`emotion.api`),
    so their numbers cannot drift apart."""
    features = trained.face_features(faces, reference)
    with torch_threads(threads):
        return trained.probabilities(features, batch_size).numpy()


@dataclass
class Item:
    """One photo or video frame on its way to a row."""

    source: str
    frame: int | None
    video: bool
    status: str  # ok | no_face | unreadable | reference | no_reference
    error: str | None = None
    landmarks: np.ndarray | None = None
    image_size: tuple[int, int] | None = None
    faces: int | None = None  # faces found (the largest is scored); None: unread
    blendshapes: np.ndarray | None = None  # (52,) FaceLandmarker's scores
    pose: np.ndarray | None = None  # (4, 4) FaceLandmarker's head pose
    # A baseline model's reference face for this item (a face vector), and its name.
    reference: np.ndarray | None = None
    reference_name: str | None = None


def items_of(media: Media, outcome: Outcome) -> list[Item]:
    """FaceMesh's outcome for one photo or video as items, video frames in frame order."""
    items = [
        Item(
            media.source,
            face.frame,
            media.video,
            "ok",
            None,
            face.landmarks,
            face.image_size,
            face.faces,
            face.blendshapes,
            face.pose,
        )
        for face in outcome.faces
    ]
    items += [
        Item(media.source, frame, media.video, "no_face", faces=0) for frame in outcome.no_face
    ]
    items += [
        Item(media.source, failure.frame, media.video, "unreadable", failure.why)
        for failure in outcome.failures
    ]
    return sorted(items, key=lambda item: -1 if item.frame is None else item.frame)


class Predictor:
    """Batches faces through the model and writes rows in input order."""

    def __init__(
        self,
        trained: FaceModel,
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
        self.counts = {
            "photos": 0,
            "frames": 0,
            "faces": 0,
            "no_face": 0,
            "unreadable": 0,
            "non_finite": 0,
            "reference": 0,
            "no_reference": 0,
        }
        self.uses_baseline = trained.preprocessing.uses_baseline
        self.trained_on_synthetic = trained.trained_on_synthetic
        self.model_seconds = 0.0

    def scored(self, item: Item) -> bool:
        """A face, read against a reference when the model needs one."""
        if item.landmarks is None or item.status != "ok":
            return False
        return not self.uses_baseline or item.reference is not None

    def add(self, items: list[Item]) -> None:
        """Queue items; score and write them once a batch of faces is waiting, or a few
        batches' worth of items without one (a long stretch of video with no face), so what
        is held stays bounded."""
        self.pending.extend(items)
        if (
            sum(map(self.scored, self.pending)) >= self.batch_size
            or len(self.pending) >= PENDING_BATCHES * self.batch_size
        ):
            self.flush()

    def label(self, probabilities: np.ndarray) -> str | None:
        """argmax, or with a threshold: positive when P(positive) >= threshold; None when a
        probability is not finite (argmax of NaN would name class 0 for no reason)."""
        names = self.trained.class_names
        if not np.isfinite(probabilities).all():
            return None
        if self.threshold is None:
            return names[int(np.argmax(probabilities))]
        if probabilities[self.positive] >= self.threshold:
            return names[self.positive]
        others = probabilities.copy()
        others[self.positive] = -1.0
        return names[int(np.argmax(others))]

    def flush(self) -> None:
        for item in self.pending:
            if self.uses_baseline and item.status == "ok" and item.reference is None:
                item.status = "no_reference"
        faces = [item for item in self.pending if self.scored(item)]
        probabilities = np.empty((0, len(self.trained.class_names)))
        if faces:
            started = time.perf_counter()
            reference = (
                np.stack([item.reference for item in faces])  # type: ignore[misc]
                if self.uses_baseline
                else None
            )
            probabilities = face_probabilities(
                self.trained, faces, reference, self.batch_size, self.threads
            )
            self.model_seconds += time.perf_counter() - started
        scores = iter(probabilities)
        for item in self.pending:
            self.writer.write(self.row(item, next(scores) if self.scored(item) else None))
        self.writer.flush()
        self.pending = []

    def row(self, item: Item, probabilities: np.ndarray | None) -> dict[str, Any]:
        names = self.trained.class_names
        self.counts["frames" if item.video else "photos"] += 1
        self.counts[{"ok": "faces"}.get(item.status, item.status)] += 1
        row: dict[str, Any] = {
            "source": item.source,
            "frame": item.frame,
            "face": item.landmarks is not None,
            "faces": item.faces,
            "status": item.status,
            "error": item.error,
            "reference": item.reference_name,
        }
        row["trained_on_synthetic"] = self.trained_on_synthetic
        if probabilities is not None:
            row.update(
                {f"p_{n}": round(float(p), 6) for n, p in zip(names, probabilities, strict=True)}
            )
            row["label"] = self.label(probabilities)
            if row["label"] is None:
                row.update(status="error", error="the model gave non-finite probabilities")
                self.counts["non_finite"] += 1
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
