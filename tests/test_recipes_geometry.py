"""Geometry options keep the shape and remove exactly what they claim to remove."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emotion.data.augment import random_pose
from emotion.data.geometry import NORMALISATIONS, normalise
from emotion.data.procrustes import procrustes_align, reference_face
from emotion.data.schema import LandmarkStore
from emotion.data.subject_neutral import subtract_subject_neutral
from emotion.data.synthetic import rotation_matrices


def _similarity(points: np.ndarray, seed: int) -> np.ndarray:
    """Each face rotated by a random large pose, scaled and moved."""
    rng = np.random.default_rng(seed)
    rotations = rotation_matrices(rng.uniform(-40, 40, (len(points), 3)))
    scale = rng.uniform(0.5, 3.0, (len(points), 1, 1))
    shift = rng.normal(0, 5, (len(points), 1, 3))
    return (scale * points @ rotations.transpose(0, 2, 1) + shift).astype(np.float32)


@pytest.mark.parametrize("method", [m for m in NORMALISATIONS if m != "subject_neutral"])
def test_every_normalisation_keeps_the_shape(tiny_synthetic: LandmarkStore, method: str) -> None:
    raw = tiny_synthetic.landmarks[:8]
    out = normalise(raw, tiny_synthetic.image_size[:8], method=method, aspect=True)
    assert out.shape == raw.shape and out.dtype == np.float32 and np.isfinite(out).all()


def test_procrustes_removes_rotation_scale_and_translation(tiny_synthetic: LandmarkStore) -> None:
    faces = normalise(tiny_synthetic.landmarks[:16], tiny_synthetic.image_size[:16], aspect=True)
    aligned = procrustes_align(faces)
    moved = procrustes_align(_similarity(faces, seed=1))
    np.testing.assert_allclose(moved, aligned, atol=1e-4)
    assert np.abs(aligned - faces).max() > 1e-3  # it did change something


def test_procrustes_maps_the_reference_onto_itself() -> None:
    reference = reference_face()
    aligned = procrustes_align(_similarity(reference[None], seed=2))[0]
    np.testing.assert_allclose(aligned, reference, atol=1e-4)


def test_nose_unit_removes_translation_and_scale(tiny_synthetic: LandmarkStore) -> None:
    raw = tiny_synthetic.landmarks[:8].astype(np.float32)
    moved = raw * 2.5 + np.array([0.1, -0.2, 0.3], dtype=np.float32)
    np.testing.assert_allclose(normalise(moved), normalise(raw), atol=1e-5)


def test_subject_neutral_never_reads_labels_outside_training() -> None:
    rng = np.random.default_rng(0)
    points = rng.normal(size=(12, 5, 3)).astype(np.float32)
    subject = np.array(["a"] * 4 + ["b"] * 4 + ["c"] * 4, dtype=object)
    label = np.array([0, 1, 0, 1] * 3)
    train = np.arange(8)  # a, b train; c is a held-out person
    out, counts = subtract_subject_neutral(points, subject, label, train, neutral_label=0)
    scrambled = label.copy()
    scrambled[8:] = 1 - scrambled[8:]  # any labels for the held-out rows
    again, _ = subtract_subject_neutral(points, subject, scrambled, train, neutral_label=0)
    np.testing.assert_array_equal(out, again)
    # training people use their own neutral rows; c falls back to the training neutral mean
    np.testing.assert_allclose(out[0], points[0] - points[[0, 2]].mean(axis=0), atol=1e-6)
    fallback = points[[0, 2, 4, 6]].mean(axis=0)
    np.testing.assert_allclose(out[8:], points[8:] - fallback, atol=1e-6)
    assert counts == {"rows_with_own_neutral": 8, "rows_with_mean_neutral": 4}
    assert out.shape == points.shape


def test_subject_neutral_does_not_use_held_out_landmarks() -> None:
    rng = np.random.default_rng(1)
    points = rng.normal(size=(8, 5, 3)).astype(np.float32)
    subject = np.array(["a"] * 4 + ["c"] * 4, dtype=object)
    label = np.array([0, 1, 0, 1] * 2)
    train = np.arange(4)
    out, _ = subtract_subject_neutral(points, subject, label, train, neutral_label=0)
    changed = points.copy()
    changed[4:] += 10.0  # held-out faces change: training features must not
    again, _ = subtract_subject_neutral(changed, subject, label, train, neutral_label=0)
    np.testing.assert_array_equal(out[:4], again[:4])


def test_pose_augmentation_keeps_shape_and_distances_under_pure_rotation() -> None:
    torch.manual_seed(0)
    features = torch.randn(6, 478 * 3)
    rotated = random_pose(features, rotation_std_deg=10.0, scale_std=0.0)
    assert rotated.shape == features.shape and not torch.allclose(rotated, features)
    norms = features.reshape(6, -1, 3).norm(dim=2)
    torch.testing.assert_close(rotated.reshape(6, -1, 3).norm(dim=2), norms)
