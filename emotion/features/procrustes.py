"""Similarity (Procrustes) alignment of every face to one fixed reference face.

Rotation, uniform scale and translation are nuisances for expression: a turned head moves every
landmark although the face did not change. Aligning each face to a reference by the rotation,
scale and translation that best fit it (least squares, Kabsch/Umeyama with no reflection)
removes all three, so only shape and expression remain.

The reference is the shipped FaceMesh template (`emotion/assets/face_template.npz`) put into
the `nose_unit` frame, not a mean of the training faces: it uses no rows of any split (so it
cannot leak), it is the same for every store and fold (so a pre-trained trunk sees the same
frame when fine-tuned), and a single photo can be aligned at inference without training data.

`procrustes_rigid` fits the same similarity on RIGID_LANDMARKS only and applies it to every
point. Fitted on all 478 points, the alignment also absorbs part of an expression (a dropped
jaw or raised brows pull the fitted rotation and scale); fitted on points that expressions
hardly move, it removes the pose and leaves the whole expression in the features.
"""

from __future__ import annotations

import functools

import numpy as np

from emotion.features.geometry import nose_unit
from emotion.features.template import load_template


def _nose_unit_one(points: np.ndarray) -> np.ndarray:
    return nose_unit(points[None].astype(np.float32))[0]


# FaceMesh points on bone rather than on mobile skin: the nose bridge and tip (1, 4, 5, 6, 168,
# 195, 197), the eye corners (33, 133, 263, 362), the sides of the face at the temples and
# cheekbones (127, 234, 356, 454) and the upper forehead (9, 10, 151), above the brows.
RIGID_LANDMARKS = (1, 4, 5, 6, 168, 195, 197, 33, 133, 263, 362, 127, 234, 356, 454, 9, 10, 151)


@functools.lru_cache(maxsize=1)
def reference_face() -> np.ndarray:
    """The template in pixel-proportional units (x*w, y*h, z*w), nose at 0, radius 1."""
    raw, (width, height), _ = load_template()
    scaled = raw * np.array([width, height, width], dtype=np.float32)
    reference = _nose_unit_one(scaled)
    reference.setflags(write=False)
    return reference


def procrustes_align(
    landmarks: np.ndarray,
    reference: np.ndarray | None = None,
    anchors: tuple[int, ...] | None = None,
) -> np.ndarray:
    """(N, K, 3) faces, each rotated, scaled and shifted onto `reference` (K, 3).

    The similarity is fitted on the `anchors` points (default: all) and applied to every
    point. The output does not change when an input face is rotated, uniformly scaled or
    translated.
    """
    target = reference_face() if reference is None else reference.astype(np.float32)
    points = landmarks.astype(np.float64, copy=False)
    fit_points = points if anchors is None else points[:, list(anchors)]
    fit_target = target if anchors is None else target[list(anchors)]
    fit_mean = fit_points.mean(axis=1, keepdims=True)
    centred = fit_points - fit_mean
    target_mean = fit_target.mean(axis=0)
    target_centred = (fit_target - target_mean).astype(np.float64)
    # Cross-covariance per face (N, 3, 3); its SVD gives the best rotation (Kabsch).
    covariance = np.einsum("nkc,kd->ncd", centred, target_centred)
    left, singular, right_t = np.linalg.svd(covariance)
    # No reflections: flip the last axis where the best orthogonal map would mirror the face.
    sign = np.sign(np.linalg.det(left @ right_t))
    sign[sign == 0] = 1.0
    left[:, :, -1] *= sign[:, None]
    singular[:, -1] *= sign
    rotation = left @ right_t
    variance = np.einsum("nkc,nkc->n", centred, centred)
    variance[variance == 0] = 1.0
    scale = singular.sum(axis=1) / variance
    aligned = scale[:, None, None] * ((points - fit_mean) @ rotation) + target_mean
    return aligned.astype(np.float32)
