"""The deployable model: RAW FaceMesh landmarks in, class probabilities out.

The normalisation of `emotion.data.geometry` is redone here in torch ops, inside the graph,
so an exported model cannot be fed features normalised the wrong way.
"""

from __future__ import annotations

import torch
from torch import nn

from emotion.data.geometry import NOSE_TIP
from emotion.models.residual_mlp import ResidualMLP


class RawLandmarkModel(nn.Module):
    """(N, 478, 3) raw landmarks [+ (N, 2) image (width, height)] -> (N, C) probabilities."""

    def __init__(self, network: ResidualMLP, normalization: str, aspect_correction: bool) -> None:
        super().__init__()
        self.network = network
        self.normalization = normalization
        self.aspect_correction = aspect_correction

    def forward(
        self, landmarks: torch.Tensor, image_size: torch.Tensor | None = None
    ) -> torch.Tensor:
        points = landmarks.float()
        if self.aspect_correction:
            if image_size is None:
                raise ValueError("this model was trained with aspect correction: pass image_size")
            size = image_size.float()
            # x * width, y * height, z * width: geometry.aspect_correct.
            scale = torch.stack((size[:, 0], size[:, 1], size[:, 0]), dim=1)
            points = points * scale[:, None, :]
        if self.normalization == "nose_unit":
            centred = points - points[:, NOSE_TIP : NOSE_TIP + 1, :]
            radius = torch.linalg.vector_norm(centred, dim=-1).amax(dim=1)
            radius = torch.where(radius > 0, radius, torch.ones_like(radius))
            points = centred / radius[:, None, None]
        return self.network(points.flatten(1)).softmax(dim=1)
