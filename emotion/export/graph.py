"""The deployable model: RAW FaceMesh landmarks in, class probabilities out.

The preprocessing runs inside the graph, in the torch twins of `emotion.features.geometry`'s
steps, so an exported model cannot be fed features normalised the wrong way. A personal-
baseline model also takes the person's reference photos, raw, and normalises and averages
them itself. Procrustes alignment needs an SVD, which ONNX has no operator for, so those
models are not exported.
"""

from __future__ import annotations

import torch
from torch import nn

from emotion.features.geometry import aspect_correct_torch, nose_unit_torch
from emotion.features.preprocessing import IN_GRAPH_NORMALIZATIONS
from emotion.features.reference import torch_mean


class RawLandmarkModel(nn.Module):
    """(N, 478, 3) raw landmarks [+ (N, 2) image (width, height)] -> (N, C) probabilities.

    A baseline model (`baseline` other than "none") also takes `reference_landmarks`
    (N, R, 478, 3) [and `reference_image_size` (N, R, 2)]: each row's R reference photos are
    normalised and averaged into its reference face (`torch_mean`, `Reference`'s torch twin),
    and the network reads the face against it. With no reference photo (R = 0) every
    probability of the row is NaN, in torch and in ONNX alike: the average is an explicit sum
    over an explicit count (0 / 0), and the probabilities are multiplied by count / count
    (1, or NaN), since a runtime's operators need not carry a NaN through (a reduction over
    nothing, an activation)."""

    def __init__(
        self,
        network: nn.Module,  # the classifier's network, whatever its architecture
        normalization: str,
        aspect_correction: bool,
        temperature: float = 1.0,
        baseline: str = "none",
        baseline_features: str = "difference",
    ) -> None:
        super().__init__()
        if normalization not in IN_GRAPH_NORMALIZATIONS:
            raise ValueError(
                f"normalisation {normalization!r} cannot run in the graph; "
                f"only {IN_GRAPH_NORMALIZATIONS}"
            )
        self.network = network
        self.normalization = normalization
        self.aspect_correction = aspect_correction
        self.temperature = float(temperature)
        self.baseline = baseline
        self.baseline_features = baseline_features

    @property
    def uses_baseline(self) -> bool:
        return self.baseline != "none"

    def points(self, landmarks: torch.Tensor, image_size: torch.Tensor | None) -> torch.Tensor:
        """(..., 478, 3) raw landmarks as normalised points, the training path's twin."""
        points = landmarks.float()
        if self.aspect_correction:
            if image_size is None:
                raise ValueError("this model was trained with aspect correction: pass image_size")
            points = aspect_correct_torch(points, image_size)
        if self.normalization == "nose_unit":
            points = nose_unit_torch(points)
        return points

    def forward(
        self,
        landmarks: torch.Tensor,
        image_size: torch.Tensor | None = None,
        reference_landmarks: torch.Tensor | None = None,
        reference_image_size: torch.Tensor | None = None,
    ) -> torch.Tensor:
        points = self.points(landmarks, image_size)
        if not self.uses_baseline:
            return (self.network(points.flatten(1)) / self.temperature).softmax(dim=1)
        if reference_landmarks is None:
            raise ValueError("this model reads faces against a reference: pass one")
        references = self.points(reference_landmarks, reference_image_size)
        reference, count = torch_mean(references)  # NaN when R = 0
        features = (points - reference).flatten(1)
        if self.baseline_features == "both":
            features = torch.cat([features, points.flatten(1)], dim=1)
        probabilities = (self.network(features) / self.temperature).softmax(dim=1)
        return probabilities * (count / count)  # x 1, or NaN for a row without a reference


class RawLandmarkEnsemble(nn.Module):
    """The mean of several RawLandmarkModels' probabilities: one graph for an ensemble."""

    def __init__(self, members: list[RawLandmarkModel]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.normalization = members[0].normalization
        self.aspect_correction = members[0].aspect_correction
        self.baseline = members[0].baseline

    @property
    def uses_baseline(self) -> bool:
        return self.baseline != "none"

    def forward(
        self,
        landmarks: torch.Tensor,
        image_size: torch.Tensor | None = None,
        reference_landmarks: torch.Tensor | None = None,
        reference_image_size: torch.Tensor | None = None,
    ) -> torch.Tensor:
        probabilities = [
            member(landmarks, image_size, reference_landmarks, reference_image_size)
            for member in self.members
        ]
        return torch.stack(probabilities).mean(0)
