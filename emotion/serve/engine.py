"""The served model: FaceMesh graphs, one per worker thread, and the trained model.

A face goes through exactly what `emotion-predict` runs on a file: the runner's upright,
reduced-resolution decoding and FaceMesh graph, the checkpoint's own preprocessing, and the
model's (temperature-scaled) probabilities. So the served numbers are the evaluated ones.
"""

from __future__ import annotations

import queue
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from emotion.facemesh.decode import MIN_SHORT_SIDE
from emotion.facemesh.runner import FaceMeshRunner
from emotion.inference.face_model import FaceModel
from emotion.serve.errors import ApiError
from emotion.serve.schemas import MAX_SIDE
from emotion.serve.settings import ServeSettings
from emotion.store.schema import MAX_COORD, MIN_EXTENT, NUM_COORDS, NUM_LANDMARKS

# Each failure the runner names, as the HTTP status and fix a client gets for it.
FAILURES = {
    "empty_file": (400, "send the image's bytes in the request body"),
    "too_large": (
        413,
        "send a smaller image (emotion-serve --max-pixels and --max-body-bytes set the limits)",
    ),
    "undecodable": (415, "send a whole JPEG, PNG or WebP image"),
    "unsupported_format": (415, "send a JPEG, PNG or WebP image"),
}

# The runner names its limits as emotion-extract's settings; the server's are its options.
OPTIONS = {"decode.max_pixels": "--max-pixels", "decode.max_bytes": "--max-body-bytes"}


@dataclass
class Found:
    """FaceMesh's answer for one image: raw (478, 3) landmarks, or None without a face."""

    landmarks: np.ndarray | None
    image_size: tuple[int, int]  # upright (width, height) of the full-resolution image
    facemesh_ms: float
    faces: int = 1  # faces FaceMesh found; `landmarks` are the largest's


class Engine:
    """Runs images through a pool of FaceMesh graphs and faces through the model."""

    def __init__(self, trained: FaceModel, settings: ServeSettings) -> None:
        self.trained = trained
        self.settings = settings
        self.positive = (
            trained.class_names.index(settings.positive_class)
            if settings.positive_class in trained.class_names
            else None
        )
        self._runners: queue.Queue[FaceMeshRunner] = queue.Queue()
        for _ in range(settings.workers):
            self._runners.put(
                FaceMeshRunner(
                    reduce="auto",
                    video_stride=1,
                    video_max_frames=1,
                    min_short_side=MIN_SHORT_SIDE,
                    max_bytes=settings.max_body_bytes,
                    max_pixels=settings.max_pixels,
                )
            )

    @contextmanager
    def _runner(self) -> Iterator[FaceMeshRunner]:
        """A FaceMesh graph of its own for the calling thread (graphs are not thread-safe)."""
        runner = self._runners.get()
        try:
            yield runner
        finally:
            self._runners.put(runner)

    def find_face(self, data: bytes) -> Found:
        """FaceMesh on one image's bytes; a client's bad image is an ApiError (4xx)."""
        started = time.perf_counter()
        with self._runner() as runner:
            outcome = runner.run_bytes(data)
        elapsed = (time.perf_counter() - started) * 1000
        if outcome.failures:
            failure = outcome.failures[0]
            status, fix = FAILURES.get(
                failure.problem, (422, "send a JPEG, PNG or WebP photo of a face")
            )
            why = failure.why
            for setting, option in OPTIONS.items():
                why = why.replace(setting, option)
            raise ApiError(status, f"the image cannot be used: {why}", fix)
        if not outcome.faces:
            return Found(None, (0, 0), elapsed, 0)
        face = outcome.faces[0]
        return Found(face.landmarks, face.image_size, elapsed, face.faces)

    def points(self, landmarks: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """One face's normalised (478, 3) points, as enrolment averages them."""
        sizes = np.asarray([image_size], dtype=np.int32)
        return self.trained.preprocessing.points(landmarks[None], sizes)[0]

    def probabilities(
        self,
        landmarks: np.ndarray,
        image_size: tuple[int, int],
        reference: np.ndarray | None,
    ) -> np.ndarray:
        """Class probabilities for one face, against `reference` for a baseline model."""
        sizes = np.asarray([image_size], dtype=np.int32)
        features = self.trained.features(landmarks[None], sizes, reference)
        return self.trained.probabilities(features).numpy()[0].astype(np.float64)

    def close(self) -> None:
        while not self._runners.empty():
            self._runners.get().close()


def check_landmarks(landmarks: list[list[float]], image_size: tuple[int, int]) -> np.ndarray:
    """A client's own FaceMesh landmarks as a (478, 3) float32 array, or a 422 saying why."""
    array = np.asarray(landmarks, dtype=np.float64)
    if array.shape != (NUM_LANDMARKS, NUM_COORDS):
        raise ApiError(
            422,
            f"landmarks must be {NUM_LANDMARKS} points of {NUM_COORDS} coordinates, "
            f"got shape {list(array.shape)}",
            "send FaceMesh's refined landmarks (refine_landmarks=True): 478 [x, y, z] lists",
        )
    if not np.isfinite(array).all():
        raise ApiError(422, "landmarks hold NaN or infinite values", "send finite numbers")
    # Checked before the cast to float32, where 1e39 becomes inf and 1e300 overflows.
    largest = float(np.abs(array).max())
    if largest > MAX_COORD:
        raise ApiError(
            422,
            f"landmarks hold {largest:g}, past ±{MAX_COORD:g}: FaceMesh's x and y are "
            "fractions of the image (0..1) and z is on the same scale",
            "send FaceMesh's normalised landmarks as it gives them, not scaled or in pixels",
        )
    extent = np.ptp(array[:, :2], axis=0)
    if float(extent.min()) < MIN_EXTENT:
        raise ApiError(
            422,
            f"the landmarks span {extent[0]:g} x {extent[1]:g}: all in one point (all zero, "
            "say) or on one line, which is no face",
            "send the landmarks of a face FaceMesh found; leave out frames without one",
        )
    if not all(1 <= side <= MAX_SIDE for side in image_size):
        raise ApiError(
            422,
            f"image_size {list(image_size)} is out of range",
            f"[width, height], 1 to {MAX_SIDE}",
        )
    return array.astype(np.float32)
