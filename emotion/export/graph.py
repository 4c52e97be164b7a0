"""The deployable model: RAW FaceMesh landmarks in, class probabilities out.

The preprocessing runs inside the graph, in the torch twins of `emotion.features.geometry`'s
steps, so an exported model cannot be fed features normalised the wrong way. Procrustes
alignment needs an SVD, which ONNX has no operator for, so those models are not exported.
"""

from __future__ import annotations

import torch
from torch import nn

from emotion.features.geometry import aspect_correct_torch, nose_unit_torch
from emotion.features.preprocessing import IN_GRAPH_NORMALISATIONS
from emotion.models.residual_mlp import ResidualMLP


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
            points = aspect_correct_torch(points, image_size)
        if self.normalization == "nose_unit":
            points = nose_unit_torch(points)
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
