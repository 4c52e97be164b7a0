"""How raw landmarks become the model's input: the one recipe training, evaluation,
prediction and export all follow, and that every checkpoint records.

`normalization`:
- `nose_unit` (the reference): nose tip at the origin, farthest landmark at radius 1;
- `none`: raw coordinates;
- `procrustes`: each face aligned to the shipped template by rotation, scale and translation,
  which also removes head rotation (`emotion.features.procrustes`);
- `procrustes_rigid`: the same alignment fitted on rigid landmarks only;
- `subject_neutral`: `procrustes`, then the data module subtracts each subject's mean neutral
  face from training rows (`emotion.features.subject_neutral`).
`aspect_correction` first undoes the x/y squeeze of a non-square photo (x*width, y*height).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from emotion.features.geometry import aspect_correct, nose_unit
from emotion.features.procrustes import RIGID_LANDMARKS, procrustes_align

NORMALISATIONS = ("nose_unit", "none", "procrustes", "procrustes_rigid", "subject_neutral")
# Normalisations an exported graph can compute (Procrustes needs an SVD, which ONNX lacks).
IN_GRAPH_NORMALISATIONS = ("nose_unit", "none")


def normalise(
    landmarks: np.ndarray,
    image_size: np.ndarray | None = None,
    *,
    method: str = "nose_unit",
    aspect: bool = False,
    inplace: bool = False,
) -> np.ndarray:
    """Apply the configured normalisation to (N, 478, 3) raw landmarks.

    With `inplace`, float32 input is overwritten instead of copied (the loader owns it)."""
    if method not in NORMALISATIONS:
        raise ValueError(f"unknown normalisation {method!r}; choose one of {NORMALISATIONS}")
    points = landmarks.astype(np.float32, copy=False)
    if aspect:
        if image_size is None:
            raise ValueError("aspect correction needs image_size")
        points, inplace = aspect_correct(points, image_size), True
    if method == "nose_unit":
        points = nose_unit(points, inplace=inplace)
    elif method in ("procrustes", "subject_neutral"):
        points = procrustes_align(points)
    elif method == "procrustes_rigid":
        points = procrustes_align(points, anchors=RIGID_LANDMARKS)
    return points


@dataclass(frozen=True)
class Preprocessing:
    """The landmark-to-feature recipe of one model; plain values, so a checkpoint carries it."""

    normalization: str = "nose_unit"
    aspect_correction: bool = False

    def __post_init__(self) -> None:
        if self.normalization not in NORMALISATIONS:
            raise ValueError(
                f"unknown normalisation {self.normalization!r}; choose one of {NORMALISATIONS}"
            )

    @property
    def in_graph(self) -> bool:
        """Whether an exported graph can compute these features itself."""
        return self.normalization in IN_GRAPH_NORMALISATIONS

    def points(
        self, landmarks: np.ndarray, image_size: np.ndarray | None, *, inplace: bool = False
    ) -> np.ndarray:
        """Raw (N, 478, 3) landmarks as normalised (N, 478, 3) float32 points."""
        return normalise(
            landmarks,
            image_size,
            method=self.normalization,
            aspect=self.aspect_correction,
            inplace=inplace,
        )

    def features(self, landmarks: np.ndarray, image_size: np.ndarray | None) -> torch.Tensor:
        """Raw (N, 478, 3) landmarks as the (N, 1434) float32 features the model reads."""
        points = self.points(landmarks, image_size)
        return torch.from_numpy(np.ascontiguousarray(points.reshape(len(points), -1)))

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Preprocessing:
        return cls(
            normalization=str(record["normalization"]),
            aspect_correction=bool(record.get("aspect_correction", False)),
        )
