"""The deployable model: RAW FaceMesh landmarks in, class probabilities out.

The normalisation of `emotion.data.geometry` is redone here in torch ops, inside the graph,
so an exported model cannot be fed features normalised the wrong way. Procrustes alignment
needs an SVD, which ONNX has no operator for, so those models are not exported.
"""

from __future__ import annotations

import torch
from torch import nn

from emotion.data.geometry import NOSE_TIP
from emotion.models.residual_mlp import ResidualMLP

IN_GRAPH_NORMALISATIONS = ("nose_unit", "none")


class RawLandmarkModel(nn.Module):
    """(N, 478, 3) raw landmarks [+ (N, 2) image (width, height)] -> (N, C) probabilities."""

    def __init__(
        self,
        network: ResidualMLP,
        normalization: str,
        aspect_correction: bool,
        temperature: float = 1.0,
    ) -> None:
        super().__init__()
        if normalization not in IN_GRAPH_NORMALISATIONS:
            raise ValueError(
                f"normalisation {normalization!r} cannot run in the graph; "
                f"only {IN_GRAPH_NORMALISATIONS}"
            )
        self.network = network
        self.normalization = normalization
        self.aspect_correction = aspect_correction
        self.temperature = float(temperature)

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
        return (self.network(points.flatten(1)) / self.temperature).softmax(dim=1)


class RawLandmarkEnsemble(nn.Module):
    """The mean of several RawLandmarkModels' probabilities: one graph for an ensemble."""

    def __init__(self, members: list[RawLandmarkModel]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.normalization = members[0].normalization
        self.aspect_correction = members[0].aspect_correction

    def forward(
        self, landmarks: torch.Tensor, image_size: torch.Tensor | None = None
    ) -> torch.Tensor:
        return torch.stack([member(landmarks, image_size) for member in self.members]).mean(0)
