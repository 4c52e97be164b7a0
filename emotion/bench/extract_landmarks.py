"""How far reduced decoding moves the landmarks, for the extraction benchmark (not timed).

Landmarks from reduced decoding are compared with full resolution in the features the model
sees (nose_unit), next to FaceLandmarker's own change when the photo moves by one pixel;
`tolerance` also compares the legacy graph's landmarks, and VIDEO mode's with IMAGE mode's.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emotion.bench.extract_photos import DEFAULT_REDUCE, decode_reduced
from emotion.facemesh.landmarker import Landmarker
from emotion.features.geometry import nose_unit


def landmark_sets(photos: list[bytes]) -> dict[str, list[np.ndarray | None]]:
    """Landmarks of every photo: full resolution, each reduction, and shifted by one pixel."""
    detector = Landmarker()
    found: dict[str, list[np.ndarray | None]] = {"full": [], "one_pixel_shift": []}
    for reduce in (2, 4, 8, DEFAULT_REDUCE):
        found[f"reduce_{reduce}"] = []
    for data in photos:
        full = decode_reduced(data, 1)
        found["full"].append(None if full is None else _points(detector, full))
        found["one_pixel_shift"].append(None if full is None else _shifted(detector, full))
        for reduce in (2, 4, 8, DEFAULT_REDUCE):
            rgb = decode_reduced(data, reduce)
            found[f"reduce_{reduce}"].append(None if rgb is None else _points(detector, rgb))
    detector.close()
    return found


def _points(detector: Landmarker, rgb: np.ndarray) -> np.ndarray | None:
    """The largest face's landmarks, None without a face."""
    reading, _ = detector.find(rgb)
    return None if reading is None else reading.landmarks


def _shifted(detector: Landmarker, rgb: np.ndarray) -> np.ndarray | None:
    """Landmarks of the photo without its first row and column, mapped back to full frame."""
    height, width = rgb.shape[:2]
    points = _points(detector, np.ascontiguousarray(rgb[1:, 1:]))
    if points is None:
        return None
    points = points.copy()
    points[:, 0] = (points[:, 0] * (width - 1) + 1) / width
    points[:, 1] = (points[:, 1] * (height - 1) + 1) / height
    points[:, 2] *= (width - 1) / width
    return points


def tolerance(full: list[np.ndarray | None], other: list[np.ndarray | None]) -> dict[str, Any]:
    """How far `other` lies from full resolution, in raw and in nose_unit coordinates."""
    both = [(a, b) for a, b in zip(full, other, strict=True) if a is not None and b is not None]
    only_one = sum((a is None) != (b is None) for a, b in zip(full, other, strict=True))
    if not both:
        return {"faces_compared": 0, "face_found_in_only_one": only_one}
    raw = np.abs(np.stack([a - b for a, b in both]))[..., :2]
    features = nose_unit(np.stack([a for a, _ in both])) - nose_unit(np.stack([b for _, b in both]))
    per_face_rms = np.sqrt((features**2).mean(axis=(1, 2)))
    return {
        "faces_compared": len(both),
        "face_found_in_only_one": int(only_one),
        "features_rms": round(float(np.sqrt((features**2).mean())), 5),
        "features_mean_abs": round(float(np.abs(features).mean()), 5),
        "features_p99_abs": round(float(np.percentile(np.abs(features), 99)), 5),
        "features_worst_face_rms": round(float(per_face_rms.max()), 5),
        "raw_xy_mean_abs": round(float(raw.mean()), 5),
        "raw_xy_max_abs": round(float(raw.max()), 5),
    }
