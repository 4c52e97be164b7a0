"""MediaPipe's Tasks `FaceLandmarker`: 478 landmarks, 52 blendshape scores and the head pose
of the largest face, from the model file this package ships.

The model (`emotion/assets/face_landmarker.task`, Apache-2.0, licence text beside it) is read
and its sha256 checked each time a landmarker is built, so a damaged or swapped file is an
error naming the fix, never a model quietly different from the one the stores were made with.
The browser's `@mediapipe/tasks-vision` runs the same file. Building a landmarker costs about
45 ms, so each worker builds one and feeds it every photo (IMAGE mode); a video gets one of its
own in VIDEO mode, which tracks the face from frame to frame instead of finding it again.
"""

from __future__ import annotations

import atexit
import hashlib
import importlib.metadata
import signal
import threading
import weakref
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from emotion.errors import EmotionError
from emotion.facemesh.mesh import MAX_FACES, NUM_COORDS, NUM_LANDMARKS, quiet_native_logs
from emotion.facemesh.mesh import silenced_stderr as silenced_stderr

MODEL_FILE = Path(__file__).resolve().parent.parent / "assets" / "face_landmarker.task"
MODEL_SHA256 = "64184e229b263107bc2b804c6625db1341ff2bb731874b0bcc2fe6544e0bc9ff"
# What a store's and a checkpoint's `extractor` record calls this extractor; two extractors
# agree when their name and model sha256 do (the mediapipe version is recorded, not compared:
# 0.10.21 and 1.2.3 give the same landmarks from the same file to 1.3e-5).
EXTRACTOR_NAME = "mediapipe-face-landmarker"
IMAGE, VIDEO = "image", "video"

# The model's 52 blendshape scores, in its output order (checked against the model by
# tests/test_landmarker.py).
BLENDSHAPE_NAMES: tuple[str, ...] = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
NUM_BLENDSHAPES = len(BLENDSHAPE_NAMES)


class ModelFileError(EmotionError):
    """The shipped model file is missing or not the one this version was made with."""


def model_bytes(path: Path = MODEL_FILE) -> bytes:
    """The model file's bytes, after checking its sha256."""
    fix = "reinstall emotion (pip install --force-reinstall emotion), which ships the model file"
    try:
        data = path.read_bytes()
    except OSError as error:
        raise ModelFileError(
            f"the FaceLandmarker model {path} cannot be read ({error})", fix
        ) from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != MODEL_SHA256:
        raise ModelFileError(
            f"the FaceLandmarker model {path} has sha256 {digest[:12]}..., expected "
            f"{MODEL_SHA256[:12]}... (damaged or replaced)",
            fix,
        )
    return data


def mediapipe_version() -> str:
    """The installed mediapipe's version, without importing it (no native start-up)."""
    try:
        return importlib.metadata.version("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        return "not installed"


def extractor_identity() -> dict[str, str]:
    """What stores and checkpoints record as the extractor of their faces."""
    return {
        "name": EXTRACTOR_NAME,
        "mediapipe_version": mediapipe_version(),
        "model_sha256": MODEL_SHA256,
    }


# Every landmarker made here, closed at exit if its owner never closed it (a notebook, a
# one-liner). Registered when this module is imported, before mediapipe registers its own exit
# handler, so it runs after that one (last registered, first run): mediapipe's close is then a
# quiet no-op. Left to mediapipe's __del__ at interpreter teardown, the close fails noisily
# ("Exception ignored ... 'NoneType' object is not callable").
_OPEN: weakref.WeakSet[Any] = weakref.WeakSet()


@atexit.register
def _close_at_exit() -> None:
    for landmarker in list(_OPEN):
        try:
            landmarker.close()
        except Exception:  # noqa: BLE001 (exiting: nothing left to tell)
            pass


def tasks_landmarker(mode: str, max_faces: int) -> tuple[Any, Any, Any]:
    """mediapipe's FaceLandmarker on the shipped model (blendshapes and pose on), with the
    image class and format it is fed: the one place a landmarker is made."""
    quiet_native_logs()
    ignore_profiling_signal()
    model = model_bytes()
    with silenced_stderr():
        import mediapipe as mp
        from mediapipe.tasks.python import BaseOptions, vision

        options = vision.FaceLandmarkerOptions(
            base_options=BaseOptions(model_asset_buffer=model),
            running_mode=vision.RunningMode.IMAGE if mode == IMAGE else vision.RunningMode.VIDEO,
            num_faces=max_faces,
            output_face_blendshapes=True,
            output_facial_transformation_matrixes=True,
        )
        landmarker = vision.FaceLandmarker.create_from_options(options)
    _OPEN.add(landmarker)
    return landmarker, mp.Image, mp.ImageFormat.SRGB


def ignore_profiling_signal() -> None:
    """Tell Python what mediapipe's native library does behind its back: SIGPROF ignored.

    mediapipe >= 1.2 arms a CPU-time timer on each of its threads that sends SIGPROF every
    10 ms, and sets SIGPROF to "ignore" in C, while Python still reports the default
    ("terminate"). Lightning's Trainer restores every signal to what Python reported when it
    started, so a process that had built a landmarker before training (a test session,
    a notebook) was killed by the next SIGPROF. Setting it in Python too keeps it ignored.
    """
    if threading.current_thread() is threading.main_thread() and signal.getsignal(
        signal.SIGPROF
    ) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGPROF, signal.SIG_IGN)


@dataclass(frozen=True)
class Reading:
    """One face as FaceLandmarker gives it."""

    landmarks: np.ndarray  # (478, 3) float32: x, y fractions of the image, z on x's scale
    blendshapes: np.ndarray  # (52,) float32 scores in 0..1, in BLENDSHAPE_NAMES order
    pose: np.ndarray  # (4, 4) float32: the canonical face's pose in the camera frame


class Landmarker:
    """One FaceLandmarker (IMAGE or VIDEO mode) for one thread: up to MAX_FACES faces, the
    largest returned with how many were found."""

    def __init__(self, mode: str = IMAGE, max_faces: int = MAX_FACES) -> None:
        if mode not in (IMAGE, VIDEO):
            raise ValueError(f"mode must be {IMAGE!r} or {VIDEO!r}, got {mode!r}")
        self._landmarker, self._image, self._format = tasks_landmarker(mode, max_faces)
        self.mode = mode
        self._last_ms = -1
        self._quiet_until_first_face = True

    def find(self, rgb: np.ndarray, timestamp_ms: int | None = None) -> tuple[Reading | None, int]:
        """The largest face in an RGB image (None without one) and how many faces there
        were. VIDEO mode takes the frame's time, increasing (a repeat is moved on by 1 ms)."""
        if rgb.ndim != 3 or rgb.shape[2] != 3:
            raise ValueError(f"expected an RGB image, got shape {rgb.shape}")
        image = self._image(image_format=self._format, data=np.ascontiguousarray(rgb))
        if self._quiet_until_first_face:
            # The graph logs once on its first face; keep that off the terminal.
            with silenced_stderr():
                result = self._detect(image, timestamp_ms)
            self._quiet_until_first_face = not result.face_landmarks
        else:
            result = self._detect(image, timestamp_ms)
        readings = [
            Reading(_landmark_array(points), _scores(scores), np.asarray(matrix, np.float32))
            for points, scores, matrix in zip(
                result.face_landmarks,
                result.face_blendshapes,
                result.facial_transformation_matrixes,
                strict=True,
            )
        ]
        readings = [reading for reading in readings if reading.landmarks.shape == _FACE_SHAPE]
        if not readings:
            return None, 0
        largest = max(readings, key=lambda reading: _box_area(reading.landmarks, rgb.shape))
        return largest, len(readings)

    def _detect(self, image: Any, timestamp_ms: int | None) -> Any:
        if self.mode == IMAGE:
            return self._landmarker.detect(image)
        stamp = max(int(timestamp_ms or 0), self._last_ms + 1)
        self._last_ms = stamp
        return self._landmarker.detect_for_video(image, stamp)

    def close(self) -> None:
        self._landmarker.close()


_FACE_SHAPE = (NUM_LANDMARKS, NUM_COORDS)


def _landmark_array(points: list[Any]) -> np.ndarray:
    return np.array([(point.x, point.y, point.z) for point in points], dtype=np.float32)


def _scores(categories: list[Any]) -> np.ndarray:
    scores = np.full(NUM_BLENDSHAPES, np.nan, dtype=np.float32)
    for category in categories:
        if 0 <= category.index < NUM_BLENDSHAPES:
            scores[category.index] = category.score
    return scores


def _box_area(coords: np.ndarray, shape: tuple[int, ...]) -> float:
    """The face's landmark bounding box in pixels (x, y are fractions of width, height)."""
    width, height = np.ptp(coords[:, 0]) * shape[1], np.ptp(coords[:, 1]) * shape[0]
    return float(width * height)
