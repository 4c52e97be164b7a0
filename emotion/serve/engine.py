"""The served model: FaceMesh graphs, one per worker thread, and the trained model.

A face goes through exactly what `emotion-predict` runs on a file: the runner's upright,
reduced-resolution decoding and FaceMesh graph, the checkpoint's own preprocessing, and the
model's (temperature-scaled) probabilities. So the served numbers are the evaluated ones.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from emotion.facemesh.decode import MIN_SHORT_SIDE
from emotion.facemesh.runner import FaceMeshRunner
from emotion.inference.face_model import FaceModel
from emotion.serve.errors import ApiError
from emotion.serve.schemas import MAX_SIDE, LandmarksIn, Stats
from emotion.serve.settings import ServeSettings
from emotion.store.schema import (
    MAX_COORD,
    MAX_POSE,
    MIN_EXTENT,
    NUM_BLENDSHAPES,
    NUM_COORDS,
    NUM_LANDMARKS,
)

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
    """The landmarker's answer for one image: raw (478, 3) landmarks, or None without a face."""

    landmarks: np.ndarray | None
    image_size: tuple[int, int]  # upright (width, height) of the full-resolution image
    facemesh_ms: float
    faces: int = 1  # faces found; `landmarks` are the largest's
    blendshapes: np.ndarray | None = None  # (52,) scores
    pose: np.ndarray | None = None  # (4, 4) head pose


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
        # What this process received, for /v1/stats: a landmark client sends no image bytes.
        self.stats = Stats(image_bytes=0, images=0, landmark_frames=0)
        self._stats_lock = threading.Lock()
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
        with self._stats_lock:
            self.stats.image_bytes += len(data)
            self.stats.images += 1
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
        return Found(
            face.landmarks, face.image_size, elapsed, face.faces, face.blendshapes, face.pose
        )

    def vector(self, found: Found) -> np.ndarray:
        """One face as the model's (D,) face vector, as enrolment averages them."""
        return self.trained.preprocessing.face_vectors([found])[0]

    def probabilities(self, found: Found, reference: np.ndarray | None) -> np.ndarray:
        """Class probabilities for one face, against `reference` for a baseline model."""
        features = self.trained.face_features([found], reference)
        return self.trained.probabilities(features).numpy()[0].astype(np.float64)

    def count_landmark_frame(self) -> None:
        with self._stats_lock:
            self.stats.landmark_frames += 1

    def close(self) -> None:
        while not self._runners.empty():
            self._runners.get().close()


def found_of(engine: Engine, face: LandmarksIn) -> Found:
    """A client's own face (a `LandmarksIn`), checked, as the model reads it: a 422 naming
    what is wrong, or what this model needs that the client did not send."""
    recipe = engine.trained.preprocessing
    landmarks = check_landmarks(face.landmarks, face.image_size)
    blendshapes = pose = None
    if face.blendshapes is not None:
        blendshapes = np.asarray(face.blendshapes, dtype=np.float64)
        if (
            blendshapes.shape != (NUM_BLENDSHAPES,)
            or not np.isfinite(blendshapes).all()
            or ((blendshapes < 0) | (blendshapes > 1)).any()
        ):
            raise ApiError(
                422,
                f"blendshapes must be {NUM_BLENDSHAPES} finite scores in 0..1",
                "send FaceLandmarker's faceBlendshapes scores, in its order",
            )
        blendshapes = blendshapes.astype(np.float32)
    elif recipe.uses_blendshapes:
        raise ApiError(
            422,
            f"this model reads FaceLandmarker's blendshape scores "
            f"(data.features={recipe.feature_set}), and none were sent",
            f"send `blendshapes`: the {NUM_BLENDSHAPES} scores of outputFaceBlendshapes",
        )
    if face.pose is not None:
        pose = np.asarray(face.pose, dtype=np.float64)
        if pose.shape != (4, 4) or not np.isfinite(pose).all() or np.abs(pose).max() > MAX_POSE:
            raise ApiError(
                422,
                f"pose must be a 4x4 matrix of finite numbers within ±{MAX_POSE:g}",
                "send FaceLandmarker's facial transformation matrix as 4 rows of 4",
            )
        pose = pose.astype(np.float32)
    elif recipe.uses_pose:
        raise ApiError(
            422,
            "this model undoes the head's rotation (data.normalization=pose), and no pose was sent",
            "send `pose`: FaceLandmarker's facial transformation matrix (4 rows of 4)",
        )
    return Found(landmarks, face.image_size, 0.0, 1, blendshapes, pose)


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
