"""How raw landmarks become the model's input: the one recipe training, evaluation,
prediction and export all follow, and that every checkpoint records.

`normalization`:
- `nose_unit` (the reference): nose tip at the origin, farthest landmark at radius 1;
- `none`: raw coordinates;
- `procrustes`: each face aligned to the shipped template by rotation, scale and translation,
  which also removes head rotation (`emotion.features.procrustes`);
- `procrustes_rigid`: the same alignment fitted on rigid landmarks only.
`aspect_correction` first undoes the x/y squeeze of a non-square photo (x*width, y*height).
`baseline` reads the face against the person's own reference face
(`emotion.features.baseline`): the model's input is then `photo - reference` (or, with
`baseline_features=both`, that difference beside the photo).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from emotion.features.baseline import BASELINE_FEATURES, BASELINES, combine
from emotion.features.choices import Normalization, values
from emotion.features.geometry import aspect_correct, nose_unit
from emotion.features.procrustes import RIGID_LANDMARKS, procrustes_align
from emotion.features.reference import ReferencePolicy, reference_face
from emotion.store.schema import NUM_COORDS, NUM_LANDMARKS

NORMALIZATIONS = values(Normalization)
# Normalisations an exported graph can compute (Procrustes needs an SVD, which ONNX lacks).
IN_GRAPH_NORMALIZATIONS = ("nose_unit", "none")


def normalize(
    landmarks: np.ndarray,
    image_size: np.ndarray | None = None,
    *,
    method: str = "nose_unit",
    aspect: bool = False,
    inplace: bool = False,
) -> np.ndarray:
    """Apply the configured normalisation to (N, 478, 3) raw landmarks.

    With `inplace`, float32 input is overwritten instead of copied (the loader owns it)."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {method!r}; choose one of {NORMALIZATIONS}")
    points = landmarks.astype(np.float32, copy=False)
    if aspect:
        if image_size is None:
            raise ValueError("aspect correction needs image_size")
        points, inplace = aspect_correct(points, image_size), True
    if method == "nose_unit":
        points = nose_unit(points, inplace=inplace)
    elif method == "procrustes":
        points = procrustes_align(points)
    elif method == "procrustes_rigid":
        points = procrustes_align(points, anchors=RIGID_LANDMARKS)
    return points


@dataclass(frozen=True)
class Preprocessing:
    """The landmark-to-feature recipe of one model; plain values, so a checkpoint carries it."""

    normalization: str = "nose_unit"
    aspect_correction: bool = False
    baseline: str = "none"  # none | enrolled | session
    enroll_per_subject: int = 1  # enrolled: reference photos per person
    baseline_features: str = "difference"  # difference | both (difference and photo)

    def __post_init__(self) -> None:
        if self.normalization not in NORMALIZATIONS:
            raise ValueError(
                f"unknown normalisation {self.normalization!r}; choose one of {NORMALIZATIONS}"
            )
        if self.baseline not in BASELINES:
            raise ValueError(f"unknown baseline {self.baseline!r}; choose one of {BASELINES}")
        if self.baseline_features not in BASELINE_FEATURES:
            raise ValueError(
                f"unknown baseline_features {self.baseline_features!r}; "
                f"choose one of {BASELINE_FEATURES}"
            )
        if self.enroll_per_subject < 1:
            raise ValueError(f"enroll_per_subject={self.enroll_per_subject} must be 1 or more")

    @property
    def in_graph(self) -> bool:
        """Whether an exported graph can compute these features itself."""
        return self.normalization in IN_GRAPH_NORMALIZATIONS

    @property
    def uses_baseline(self) -> bool:
        return self.baseline != "none"

    @property
    def reference_policy(self) -> ReferencePolicy:
        """Which references this model reads faces against (its baseline mode's)."""
        return ReferencePolicy(self.baseline)

    @property
    def input_dim(self) -> int:
        """Features per face: the points, or with a baseline and `both`, twice that."""
        points = NUM_LANDMARKS * NUM_COORDS
        return 2 * points if self.uses_baseline and self.baseline_features == "both" else points

    def points(
        self, landmarks: np.ndarray, image_size: np.ndarray | None, *, inplace: bool = False
    ) -> np.ndarray:
        """Raw (N, 478, 3) landmarks as normalised (N, 478, 3) float32 points."""
        return normalize(
            landmarks,
            image_size,
            method=self.normalization,
            aspect=self.aspect_correction,
            inplace=inplace,
        )

    def reference(self, landmarks: np.ndarray, image_size: np.ndarray | None) -> np.ndarray:
        """Raw landmarks of a person's reference photos as one (478, 3) reference face."""
        return reference_face(self.points(landmarks, image_size))

    def features(
        self,
        landmarks: np.ndarray,
        image_size: np.ndarray | None,
        reference: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Raw (N, 478, 3) landmarks as the (N, input_dim) float32 features the model reads;
        with a baseline, against `reference`: a (478, 3) or (N, 478, 3) reference face."""
        points = self.points(landmarks, image_size)
        if not self.uses_baseline:
            return torch.from_numpy(np.ascontiguousarray(points.reshape(len(points), -1)))
        if reference is None:
            raise ValueError(f"a data.baseline={self.baseline} model needs a reference face")
        return torch.from_numpy(combine(points, reference, self.baseline_features))

    def to_record(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Preprocessing:
        """From a checkpoint's record; records older than the baseline have none."""
        return cls(
            normalization=str(record["normalization"]),
            aspect_correction=bool(record.get("aspect_correction", False)),
            baseline=str(record.get("baseline") or "none"),
            enroll_per_subject=int(record.get("enroll_per_subject") or 1),
            baseline_features=str(record.get("baseline_features") or "difference"),
        )
