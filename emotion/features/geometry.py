"""Landmark geometry, step by step: raw FaceMesh coordinates into shape-only points.

FaceMesh reports x and y as fractions of the image width and height and z on the scale of
the width. `aspect_correct` puts them back into pixels (x*width, y*height, z*width), which
undoes the squeeze a non-square image puts on the face. `nose_unit` moves the nose tip
(landmark 1) to the origin and divides by the distance of the farthest landmark, which
removes position and size.

Each step is written twice, side by side: in numpy for training (in place over a whole
store) and in torch for the exported graph, which normalises raw landmarks itself.
tests/test_geometry.py holds the two equal.
"""

from __future__ import annotations

import numpy as np
import torch

NOSE_TIP = 1


def aspect_correct(landmarks: np.ndarray, image_size: np.ndarray) -> np.ndarray:
    """Raw (N, 478, 3) coordinates in pixel units, using image_size (N, 2) = (width, height)."""
    width = image_size[:, 0].astype(np.float32)[:, None]
    height = image_size[:, 1].astype(np.float32)[:, None]
    corrected = np.empty_like(landmarks, dtype=np.float32)
    corrected[..., 0] = landmarks[..., 0] * width
    corrected[..., 1] = landmarks[..., 1] * height
    corrected[..., 2] = landmarks[..., 2] * width
    return corrected


def aspect_correct_torch(landmarks: torch.Tensor, image_size: torch.Tensor) -> torch.Tensor:
    """`aspect_correct` in torch ops: (..., K, 3) landmarks, (..., 2) image sizes."""
    size = image_size.float()
    scale = torch.stack((size[..., 0], size[..., 1], size[..., 0]), dim=-1)
    return landmarks.float() * scale[..., None, :]


# MediaPipe's camera frame has y up and z towards the viewer; image coordinates have y down
# and z away from the camera. This flip takes one to the other (it is its own inverse).
_CAMERA_FLIP = np.diag([1.0, -1.0, -1.0]).astype(np.float32)


def unrotate(points: np.ndarray, pose: np.ndarray) -> np.ndarray:
    """(N, K, 3) points in pixel units, the head's rotation undone: each face turned by the
    inverse of its (N, 4, 4) pose matrix's rotation, in the camera frame (rows:
    p' = p F R F, F the y/z flip, R the rotation, since R^-1 = R^T)."""
    rotation = pose[:, :3, :3].astype(np.float32)
    turn = _CAMERA_FLIP @ rotation @ _CAMERA_FLIP
    return np.matmul(points, turn).astype(np.float32)


def unrotate_torch(points: torch.Tensor, pose: torch.Tensor) -> torch.Tensor:
    """`unrotate` in torch ops, over (..., K, 3) points and (..., 4, 4) poses."""
    flip = torch.tensor([1.0, -1.0, -1.0], dtype=points.dtype, device=points.device)
    rotation = pose[..., :3, :3].to(points.dtype)
    turn = flip[:, None] * rotation * flip[None, :]
    return points @ turn


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


def nose_unit_torch(landmarks: torch.Tensor) -> torch.Tensor:
    """`nose_unit` in torch ops, over (..., K, 3) landmarks."""
    centred = landmarks - landmarks[..., NOSE_TIP : NOSE_TIP + 1, :]
    radius = torch.linalg.vector_norm(centred, dim=-1).amax(dim=-1)
    radius = torch.where(radius > 0, radius, torch.ones_like(radius))
    return centred / radius[..., None, None]
