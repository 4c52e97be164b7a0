"""Geometry options keep the shape and remove exactly what they claim to remove."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from emotion.features.augment import random_pose
from emotion.features.preprocessing import NORMALISATIONS, normalise
from emotion.features.procrustes import RIGID_LANDMARKS, procrustes_align, reference_face
from emotion.features.subject_neutral import subtract_subject_neutral
from emotion.store.schema import LandmarkStore
from emotion.synthetic.render import rotation_matrices


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


@pytest.mark.parametrize("anchors", [None, RIGID_LANDMARKS])
def test_procrustes_removes_rotation_scale_and_translation(
    tiny_synthetic: LandmarkStore, anchors: tuple[int, ...] | None
) -> None:
    faces = normalise(tiny_synthetic.landmarks[:16], tiny_synthetic.image_size[:16], aspect=True)
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


def test_aspect_correction_removes_the_image_shape(tiny_synthetic: LandmarkStore) -> None:
    """The same face in pixels, on a 4:3 and on a square canvas: identical after correction."""
    pixels = tiny_synthetic.landmarks[:4] * np.array([1280, 960, 1280], dtype=np.float32)
    wide = pixels / np.array([1280, 960, 1280], dtype=np.float32)
    square = (pixels + np.array([-100, 50, 0], dtype=np.float32)) / np.float32(960)
    sizes = {"wide": np.tile([[1280, 960]], (4, 1)), "square": np.tile([[960, 960]], (4, 1))}
    corrected_wide = normalise(wide, sizes["wide"], aspect=True)
    corrected_square = normalise(square, sizes["square"], aspect=True)
    np.testing.assert_allclose(corrected_wide, corrected_square, atol=1e-5)
    uncorrected = normalise(wide) - normalise(square)
    assert np.abs(uncorrected).max() > 1e-2  # without correction the squeeze remains


def test_subject_neutral_datamodule_ignores_held_out_labels(make_store) -> None:
    """Permuting labels inside val/test people (class sets, so folds, unchanged) changes no
    feature of any stage."""
    from emotion.data.datamodule import LandmarkDataModule

    people = [f"p{i:02d}" for i in range(12) for _ in range(4)]
    label = [0, 1, 0, 1] * 12
    settings = dict(normalization="subject_neutral", split_strategy="kfold", num_folds=3, fold=0)
    first = LandmarkDataModule(str(make_store(label, people, name="a.h5")), **settings)
    first.setup()
    held_out = set(first.subjects("val").tolist()) | set(first.subjects("test").tolist())
    permuted = [
        (1 - target) if person in held_out else target
        for person, target in zip(people, label, strict=True)
    ]
    second = LandmarkDataModule(str(make_store(permuted, people, name="b.h5")), **settings)
    second.setup()
    for stage in ("train", "val", "test"):
        assert (first.subjects(stage) == second.subjects(stage)).all()
        torch.testing.assert_close(first.rows(stage).features, second.rows(stage).features)
    assert first.summary["subject_neutral"]["rows_with_mean_neutral"] == 4 * len(held_out)
