"""Geometry options keep the shape and remove exactly what they claim to remove."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emotion.features.augment import random_pose
from emotion.features.preprocessing import NORMALIZATIONS, normalize
from emotion.features.procrustes import RIGID_LANDMARKS, procrustes_align, reference_face
from emotion.store.schema import LandmarkStore
from emotion.synthetic.render import rotation_matrices


def _similarity(points: np.ndarray, seed: int) -> np.ndarray:
    """Each face rotated by a random large pose, scaled and moved."""
    rng = np.random.default_rng(seed)
    rotations = rotation_matrices(rng.uniform(-40, 40, (len(points), 3)))
    scale = rng.uniform(0.5, 3.0, (len(points), 1, 1))
    shift = rng.normal(0, 5, (len(points), 1, 3))
    return (scale * points @ rotations.transpose(0, 2, 1) + shift).astype(np.float32)


@pytest.mark.parametrize("method", NORMALIZATIONS)
def test_every_normalization_keeps_the_shape(tiny_synthetic: LandmarkStore, method: str) -> None:
    raw = tiny_synthetic.landmarks[:8]
    pose = np.tile(np.eye(4, dtype=np.float32), (8, 1, 1))  # SYNTHETIC rows have none of their own
    out = normalize(raw, tiny_synthetic.image_size[:8], method=method, aspect=True, pose=pose)
    assert out.shape == raw.shape and out.dtype == np.float32 and np.isfinite(out).all()


@pytest.mark.parametrize("anchors", [None, RIGID_LANDMARKS])
def test_procrustes_removes_rotation_scale_and_translation(
    tiny_synthetic: LandmarkStore, anchors: tuple[int, ...] | None
) -> None:
    faces = normalize(tiny_synthetic.landmarks[:16], tiny_synthetic.image_size[:16], aspect=True)
    aligned = procrustes_align(faces, anchors=anchors)
    moved = procrustes_align(_similarity(faces, seed=1), anchors=anchors)
    np.testing.assert_allclose(moved, aligned, atol=1e-4)
    assert np.abs(aligned - faces).max() > 1e-3  # it did change something


def test_rigid_procrustes_is_not_moved_by_an_expression_off_its_anchors() -> None:
    """Opening the mouth moves the all-point fit of every point; the rigid fit moves only
    the points that moved."""
    reference = reference_face()
    mouth = [index for index in range(len(reference)) if reference[index, 1] > 0.2]
    assert not set(mouth) & set(RIGID_LANDMARKS)
    expressive = reference.copy()
    expressive[mouth, 1] += 0.1  # the lower face drops
    rigid = procrustes_align(expressive[None], anchors=RIGID_LANDMARKS)[0]
    still = np.setdiff1d(np.arange(len(reference)), mouth)
    np.testing.assert_allclose(rigid[still], reference[still], atol=1e-5)
    every_point = procrustes_align(expressive[None])[0]
    assert np.abs(every_point[still] - reference[still]).max() > 1e-3


def test_procrustes_maps_the_reference_onto_itself() -> None:
    reference = reference_face()
    aligned = procrustes_align(_similarity(reference[None], seed=2))[0]
    np.testing.assert_allclose(aligned, reference, atol=1e-4)


def test_nose_unit_removes_translation_and_scale(tiny_synthetic: LandmarkStore) -> None:
    raw = tiny_synthetic.landmarks[:8].astype(np.float32)
    moved = raw * 2.5 + np.array([0.1, -0.2, 0.3], dtype=np.float32)
    np.testing.assert_allclose(normalize(moved), normalize(raw), atol=1e-5)


def test_pose_augmentation_keeps_shape_and_distances_under_pure_rotation() -> None:
    torch.manual_seed(0)
    features = torch.randn(6, 478 * 3)
    rotated = random_pose(features, rotation_std_deg=10.0, scale_std=0.0)
    assert rotated.shape == features.shape and not torch.allclose(rotated, features)
    norms = features.reshape(6, -1, 3).norm(dim=2)
    torch.testing.assert_close(rotated.reshape(6, -1, 3).norm(dim=2), norms)


def test_aspect_correction_removes_the_image_shape(tiny_synthetic: LandmarkStore) -> None:
    """The same face in pixels, on a 4:3 and on a square canvas: identical after correction."""
    pixels = tiny_synthetic.landmarks[:4] * np.array([1280, 960, 1280], dtype=np.float32)
    wide = pixels / np.array([1280, 960, 1280], dtype=np.float32)
    square = (pixels + np.array([-100, 50, 0], dtype=np.float32)) / np.float32(960)
    sizes = {"wide": np.tile([[1280, 960]], (4, 1)), "square": np.tile([[960, 960]], (4, 1))}
    corrected_wide = normalize(wide, sizes["wide"], aspect=True)
    corrected_square = normalize(square, sizes["square"], aspect=True)
    np.testing.assert_allclose(corrected_wide, corrected_square, atol=1e-5)
    uncorrected = normalize(wide) - normalize(square)
    assert np.abs(uncorrected).max() > 1e-2  # without correction the squeeze remains
