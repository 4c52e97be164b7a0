"""Normalisation removes position and size; aspect correction undoes the image squeeze."""

from __future__ import annotations

import numpy as np
import pytest

from emotion.features.geometry import NOSE_TIP, aspect_correct
from emotion.features.preprocessing import normalize


def test_nose_unit_puts_the_nose_at_the_origin_and_the_farthest_point_at_one() -> None:
    raw = np.random.default_rng(0).random((5, 478, 3), dtype=np.float32)
    points = normalize(raw)
    np.testing.assert_allclose(points[:, NOSE_TIP], 0.0, atol=1e-7)
    np.testing.assert_allclose(np.linalg.norm(points, axis=-1).max(axis=1), 1.0, rtol=1e-6)


def test_nose_unit_ignores_position_and_size() -> None:
    raw = np.random.default_rng(1).random((3, 478, 3), dtype=np.float32)
    moved = raw * 2.5 + np.array([0.3, -0.1, 0.2], dtype=np.float32)
    np.testing.assert_allclose(normalize(raw), normalize(moved), atol=1e-5)


def test_aspect_correction_restores_pixel_proportions() -> None:
    pixels = np.random.default_rng(2).random((2, 478, 3), dtype=np.float32) * 500
    size = np.array([[1280, 960], [960, 1280]])
    raw = pixels.copy()
    raw[..., 0] /= size[:, :1]
    raw[..., 1] /= size[:, 1:]
    raw[..., 2] /= size[:, :1]
    np.testing.assert_allclose(aspect_correct(raw, size), pixels, rtol=1e-5)
    squeezed, corrected = normalize(raw, size), normalize(raw, size, aspect=True)
    np.testing.assert_allclose(corrected, normalize(pixels), atol=1e-5)
    assert not np.allclose(squeezed, corrected, atol=1e-3)


def test_unknown_normalization_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown normalisation"):
        normalize(np.zeros((1, 478, 3), np.float32), method="procrustes?")


def test_the_torch_twins_equal_the_numpy_steps() -> None:
    """The exported graph normalises with the torch twins; training with the numpy steps."""
    import torch

    from emotion.features.geometry import aspect_correct_torch, nose_unit, nose_unit_torch

    rng = np.random.default_rng(3)
    raw = rng.random((6, 478, 3), dtype=np.float32)
    raw[0] = raw[0, :1]  # every point at the nose: radius 0, left unscaled
    size = rng.integers(240, 4000, (6, 2))
    corrected = aspect_correct(raw, size)
    twin = aspect_correct_torch(torch.from_numpy(raw), torch.from_numpy(size))
    np.testing.assert_allclose(twin.numpy(), corrected, rtol=1e-6)
    np.testing.assert_allclose(
        nose_unit_torch(torch.from_numpy(corrected)).numpy(), nose_unit(corrected), atol=1e-6
    )
