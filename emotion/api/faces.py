"""Faces for the Python API: from a photo's path or bytes (emotion-predict's worker), an RGB
array (the landmarker on it directly), or a face found elsewhere (checked against what the
model reads)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from emotion.errors import EmotionError
from emotion.facemesh.files import VIDEO_SUFFIXES
from emotion.facemesh.media import Face, Outcome
from emotion.inference.face_model import FaceModel
from emotion.store.schema import NUM_COORDS, NUM_LANDMARKS

if TYPE_CHECKING:
    from emotion.facemesh.landmarker import Landmarker


def check_photo_path(path: Path) -> None:
    """A path predict can read as one photo: refused before any work otherwise."""
    if path.is_dir():
        raise EmotionError(
            f"{path} is a folder", "pass a list of its photos, or run emotion-predict on it"
        )
    if not path.exists():
        raise EmotionError(f"{path} does not exist", "check the path")
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise EmotionError(f"{path} is a video", "run emotion-predict on videos")


def only_face(outcome: Outcome, what: str) -> Face | None:
    """The photo's face, None without one; an image that cannot be read is an error."""
    if outcome.failures:
        failure = outcome.failures[0]
        raise EmotionError(
            f"{what} cannot be read: {failure.why}", "pass a whole JPEG, PNG or WebP photo"
        )
    return outcome.faces[0] if outcome.faces else None


def face_in_array(detector: Landmarker, rgb: np.ndarray) -> Face | None:
    """The largest face in an RGB uint8 array, as given: no EXIF, no reduced decoding."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8 or 0 in rgb.shape:
        raise EmotionError(
            f"an image array must be RGB uint8 of shape (height, width, 3), got "
            f"{rgb.dtype} {rgb.shape}",
            "convert it, e.g. np.asarray(PIL.Image.open(path).convert('RGB'))",
        )
    reading, count = detector.find(rgb)
    if reading is None:
        return None
    size = (int(rgb.shape[1]), int(rgb.shape[0]))
    return Face(None, reading.landmarks, size, count, reading.blendshapes, reading.pose)


def face_like(face: Any, trained: FaceModel) -> Face:
    """A face found elsewhere (landmarks=..., a Prediction), checked against what the model
    reads: a model that reads image size, blendshapes or pose refuses a face without them."""
    landmarks = np.asarray(face.landmarks, dtype=np.float32)
    if landmarks.shape != (NUM_LANDMARKS, NUM_COORDS) or not np.isfinite(landmarks).all():
        raise EmotionError(
            f"landmarks must be {NUM_LANDMARKS} finite [x, y, z] points, got shape "
            f"{landmarks.shape}",
            f"pass FaceLandmarker's raw face landmarks as a ({NUM_LANDMARKS}, 3) array",
        )
    recipe = trained.preprocessing
    needs = {
        "image_size": recipe.uses_image_size,
        "blendshapes": recipe.uses_blendshapes,
        "pose": recipe.uses_pose,
    }
    missing = [name for name, needed in needs.items() if needed and _of(face, name) is None]
    if missing:
        raise EmotionError(
            f"{trained.description} reads {', '.join(missing)} too, and none was given",
            f"pass {', '.join(f'{name}=...' for name in missing)} (FaceLandmarker gives them)",
        )
    size = _of(face, "image_size")
    width, height = _image_size(size) if size is not None else (0, 0)  # (0, 0): not read
    return Face(
        None,
        landmarks,
        (width, height),
        int(_of(face, "faces") or 1),
        _array(_of(face, "blendshapes")),
        _array(_of(face, "pose")),
    )


def _image_size(size: Any) -> tuple[int, int]:
    """(width, height) in pixels, both positive."""
    sides = np.asarray(size, dtype=np.float64).ravel()
    if sides.shape != (2,) or not np.isfinite(sides).all() or (sides < 1).any():
        raise EmotionError(
            f"image_size must be (width, height) in pixels, got {size!r}",
            "pass the size of the image the landmarks were found in",
        )
    return int(sides[0]), int(sides[1])


def _of(face: Any, name: str) -> Any:
    return getattr(face, name, None)


def _array(value: Any) -> np.ndarray | None:
    return None if value is None else np.asarray(value, dtype=np.float32)
