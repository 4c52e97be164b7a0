"""Landmark geometry: turn raw FaceMesh coordinates into shape-only features.

FaceMesh reports x and y as fractions of the image width and height and z on the scale of
the width. `nose_unit` moves the nose tip (landmark 1) to the origin and divides by the
distance of the farthest landmark, which removes position and size. With `aspect`, x, y and
z are first put back into pixels (x*width, y*height, z*width), which undoes the squeeze a
non-square image puts on the face.

`procrustes` aligns every face to a fixed reference face by rotation, scale and translation
(emotion/data/procrustes.py), which also removes head rotation; `procrustes_rigid` fits that
alignment on rigid landmarks only (nose, eye corners, temples, forehead). `subject_neutral` is
`procrustes` here; the data module then subtracts each subject's mean neutral face, using
training rows only (emotion/data/subject_neutral.py). See docs/recipes.md.
"""

from __future__ import annotations

import numpy as np

NOSE_TIP = 1
NORMALISATIONS = ("nose_unit", "none", "procrustes", "procrustes_rigid", "subject_neutral")
# Normalisations that need the split (training rows) after the per-row step.
SPLIT_AWARE_NORMALISATIONS = ("subject_neutral",)


def aspect_correct(landmarks: np.ndarray, image_size: np.ndarray) -> np.ndarray:
    """Raw (N, 478, 3) coordinates in pixel units, using image_size (N, 2) = (width, height)."""
    width = image_size[:, 0].astype(np.float32)[:, None]
    height = image_size[:, 1].astype(np.float32)[:, None]
    corrected = np.empty_like(landmarks, dtype=np.float32)
    corrected[..., 0] = landmarks[..., 0] * width
    corrected[..., 1] = landmarks[..., 1] * height
    corrected[..., 2] = landmarks[..., 2] * width
    return corrected


def nose_unit(landmarks: np.ndarray, *, inplace: bool = False) -> np.ndarray:
    """Nose tip at the origin, farthest landmark at radius 1 (the reference normalisation)."""
    if inplace and landmarks.dtype == np.float32:
        centred = landmarks
        centred -= landmarks[:, NOSE_TIP : NOSE_TIP + 1, :].copy()
    else:
        centred = (landmarks - landmarks[:, NOSE_TIP : NOSE_TIP + 1, :]).astype(np.float32)
    # einsum over the 3 coordinates is ~10x faster than np.linalg.norm on this small last axis.
    radius = np.sqrt(np.einsum("nkc,nkc->nk", centred, centred).max(axis=1))
    radius[radius == 0] = 1.0
    centred /= radius[:, None, None]
    return centred


def normalise(
    landmarks: np.ndarray,
    image_size: np.ndarray | None = None,
    *,
    method: str = "nose_unit",
    aspect: bool = False,
    inplace: bool = False,
) -> np.ndarray:
    """Apply the configured normalisation to (N, 478, 3) raw landmarks.

    With `inplace`, float32 input is overwritten instead of copied (the loader owns it)."""
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {method!r}; choose one of {NORMALISATIONS}")
    points = landmarks.astype(np.float32, copy=False)
    if aspect:
        if image_size is None:
            raise ValueError("aspect correction needs image_size")
        points, inplace = aspect_correct(points, image_size), True
    if method == "nose_unit":
        points = nose_unit(points, inplace=inplace)
    elif method in ("procrustes", "subject_neutral"):
        from emotion.data.procrustes import procrustes_align

        points = procrustes_align(points)
    elif method == "procrustes_rigid":
        from emotion.data.procrustes import RIGID_LANDMARKS, procrustes_align

        points = procrustes_align(points, anchors=RIGID_LANDMARKS)
    return points
