"""Random head pose and face size on training batches: rotation and scale augmentation.

Features are flattened (N, K*3) landmarks centred on the nose tip (or a reference face), so a
small random rotation about the origin and a random uniform scale imitate a slightly turned
head and a face measured at another size, without changing the expression.
"""

from __future__ import annotations

import math

import torch


def random_rotations(count: int, std_deg: float, like: torch.Tensor) -> torch.Tensor:
    """(count, 3, 3) rotations from yaw, pitch and roll drawn from N(0, std_deg) each."""
    angles = torch.randn(count, 3, device=like.device, dtype=like.dtype) * math.radians(std_deg)
    cos, sin = angles.cos(), angles.sin()
    zeros, ones = torch.zeros_like(cos[:, 0]), torch.ones_like(cos[:, 0])

    def matrix(rows: list[list[torch.Tensor]]) -> torch.Tensor:
        return torch.stack([torch.stack(row, dim=-1) for row in rows], dim=-2)

    yaw = matrix(
        [[cos[:, 0], zeros, sin[:, 0]], [zeros, ones, zeros], [-sin[:, 0], zeros, cos[:, 0]]]
    )
    pitch = matrix(
        [[ones, zeros, zeros], [zeros, cos[:, 1], -sin[:, 1]], [zeros, sin[:, 1], cos[:, 1]]]
    )
    roll = matrix(
        [[cos[:, 2], -sin[:, 2], zeros], [sin[:, 2], cos[:, 2], zeros], [zeros, zeros, ones]]
    )
    return yaw @ pitch @ roll


def random_pose(features: torch.Tensor, rotation_std_deg: float, scale_std: float) -> torch.Tensor:
    """(N, K*3) features, each face rotated and scaled by its own random draw."""
    points = features.reshape(features.shape[0], -1, 3)
    if rotation_std_deg > 0:
        rotations = random_rotations(points.shape[0], rotation_std_deg, points)
        points = points @ rotations.transpose(1, 2)
    if scale_std > 0:
        scale = 1.0 + torch.randn(points.shape[0], 1, 1, device=points.device) * scale_std
        points = points * scale.to(points.dtype)
    return points.reshape(features.shape)
