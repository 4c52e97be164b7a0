"""How raw landmarks become the model's input: the one recipe training, evaluation,
prediction and export all follow, and that every checkpoint records.

`normalization`:
- `nose_unit` (the reference): nose tip at the origin, farthest landmark at radius 1;
- `none`: raw coordinates;
- `procrustes`: each face aligned to the shipped template by rotation, scale and translation,
  which also removes head rotation (`emotion.features.procrustes`);
- `procrustes_rigid`: the same alignment fitted on rigid landmarks only;
- `pose`: the head's rotation undone with FaceLandmarker's pose matrix, then `nose_unit`
  (always in pixel units: a rotation needs x, y and z on one scale).
`aspect_correction` first undoes the x/y squeeze of a non-square photo (x*width, y*height).
`features` says what of a face the model reads: the normalised landmarks, FaceLandmarker's
52 blendshape scores, or both; each face becomes one flat vector (landmarks first).
`baseline` reads the face against the person's own reference face
(`emotion.features.baseline`): the model's input is then `photo - reference` (or, with
`baseline_features=both`, that difference beside the photo).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

from emotion.features.baseline import BASELINE_FEATURES, BASELINES, combine
from emotion.features.choices import Features, Normalization, values
from emotion.features.geometry import aspect_correct, nose_unit, unrotate
from emotion.features.procrustes import RIGID_LANDMARKS, procrustes_align
from emotion.features.reference import ReferencePolicy, reference_face
from emotion.store.schema import NUM_BLENDSHAPES, NUM_COORDS, NUM_LANDMARKS

NORMALIZATIONS = values(Normalization)
FEATURES = values(Features)
# Normalisations an exported graph can compute (Procrustes needs an SVD, which ONNX lacks).
IN_GRAPH_NORMALIZATIONS = ("nose_unit", "none", "pose")


def normalize(
    landmarks: np.ndarray,
    image_size: np.ndarray | None = None,
    *,
    method: str = "nose_unit",
    aspect: bool = False,
    inplace: bool = False,
    pose: np.ndarray | None = None,
) -> np.ndarray:
    """Apply the configured normalisation to (N, 478, 3) raw landmarks (`pose`: their
    (N, 4, 4) pose matrices, which method `pose` needs).

    With `inplace`, float32 input is overwritten instead of copied (the loader owns it)."""
    if method not in NORMALIZATIONS:
        raise ValueError(f"unknown normalisation {method!r}; choose one of {NORMALIZATIONS}")
    points = landmarks.astype(np.float32, copy=False)
    if aspect or method == "pose":
        if image_size is None:
            raise ValueError("aspect correction needs image_size")
        points, inplace = aspect_correct(points, image_size), True
    if method == "pose":
        if pose is None:
            raise ValueError("normalisation 'pose' needs the faces' pose matrices")
        points = nose_unit(unrotate(points, pose), inplace=True)
    elif method == "nose_unit":
        points = nose_unit(points, inplace=inplace)
    elif method == "procrustes":
        points = procrustes_align(points)
    elif method == "procrustes_rigid":
        points = procrustes_align(points, anchors=RIGID_LANDMARKS)
    return points


def stacked(
    faces: Sequence[Any],
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """Face-like items as (N, 478, 3) landmarks, (N, 2) image sizes and, where every item has
    them, (N, 52) blendshapes and (N, 4, 4) poses (else None)."""
    landmarks = np.stack([face.landmarks for face in faces])
    sizes = np.asarray([face.image_size for face in faces], dtype=np.int32).reshape(-1, 2)
    blendshapes = [getattr(face, "blendshapes", None) for face in faces]
    poses = [getattr(face, "pose", None) for face in faces]
    return (
        landmarks,
        sizes,
        None if any(value is None for value in blendshapes) else np.stack(blendshapes),
        None if any(value is None for value in poses) else np.stack(poses),
    )


@dataclass(frozen=True)
class Preprocessing:
    """The landmark-to-feature recipe of one model; plain values, so a checkpoint carries it."""

    normalization: str = "nose_unit"
    aspect_correction: bool = False
    baseline: str = "none"  # none | enrolled | session
    enroll_per_subject: int = 1  # enrolled: reference photos per person
    baseline_features: str = "difference"  # difference | both (difference and photo)
    # data.features: landmarks | blendshapes | landmarks+blendshapes
    feature_set: str = "landmarks"

    def __post_init__(self) -> None:
        if self.feature_set not in FEATURES:
            raise ValueError(f"unknown features {self.feature_set!r}; choose one of {FEATURES}")
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
    def uses_landmarks(self) -> bool:
        return "landmarks" in self.feature_set.split("+")

    @property
    def uses_blendshapes(self) -> bool:
        return "blendshapes" in self.feature_set.split("+")

    @property
    def uses_pose(self) -> bool:
        """Whether the landmarks are read through the head's pose matrix."""
        return self.uses_landmarks and self.normalization == Normalization.pose.value

    @property
    def uses_image_size(self) -> bool:
        return self.uses_landmarks and (self.aspect_correction or self.uses_pose)

    @property
    def face_dim(self) -> int:
        """Numbers per face: its flattened points and/or its blendshape scores."""
        return NUM_LANDMARKS * NUM_COORDS * self.uses_landmarks + NUM_BLENDSHAPES * (
            self.uses_blendshapes
        )

    @property
    def input_dim(self) -> int:
        """Features per face: `face_dim`, or with a baseline and `both`, twice that."""
        both = self.uses_baseline and self.baseline_features == "both"
        return 2 * self.face_dim if both else self.face_dim

    def points(
        self,
        landmarks: np.ndarray,
        image_size: np.ndarray | None,
        *,
        inplace: bool = False,
        pose: np.ndarray | None = None,
    ) -> np.ndarray:
        """Raw (N, 478, 3) landmarks as normalised (N, 478, 3) float32 points."""
        return normalize(
            landmarks,
            image_size,
            method=self.normalization,
            aspect=self.aspect_correction,
            inplace=inplace,
            pose=pose,
        )

    def vectors(
        self,
        landmarks: np.ndarray,
        image_size: np.ndarray | None,
        blendshapes: np.ndarray | None = None,
        pose: np.ndarray | None = None,
        *,
        inplace: bool = False,
    ) -> np.ndarray:
        """Raw faces as (N, face_dim) float32 vectors: what a reference averages and the
        model reads (against a reference, with a baseline)."""
        parts = []
        if self.uses_landmarks:
            points = self.points(landmarks, image_size, inplace=inplace, pose=pose)
            parts.append(points.reshape(len(points), -1))
        if self.uses_blendshapes:
            if blendshapes is None:
                raise ValueError(f"features={self.feature_set} needs the blendshape scores")
            scores = np.asarray(blendshapes, dtype=np.float32)
            parts.append(scores.reshape(len(landmarks), NUM_BLENDSHAPES))
        if len(parts) == 1:
            return np.ascontiguousarray(parts[0], dtype=np.float32)
        return np.concatenate(parts, axis=1).astype(np.float32, copy=False)

    def face_vectors(self, faces: Sequence[Any]) -> np.ndarray:
        """(N, face_dim) vectors of face-like items (`landmarks`, `image_size`,
        `blendshapes`, `pose` attributes: an extracted Face, a prediction's item)."""
        return self.vectors(*stacked(faces))

    def face_features(
        self, faces: Sequence[Any], reference: np.ndarray | None = None
    ) -> torch.Tensor:
        """`features` of face-like items (see `face_vectors`)."""
        landmarks, sizes, blendshapes, pose = stacked(faces)
        return self.features(landmarks, sizes, reference, blendshapes, pose)

    def reference(
        self,
        landmarks: np.ndarray,
        image_size: np.ndarray | None,
        blendshapes: np.ndarray | None = None,
        pose: np.ndarray | None = None,
    ) -> np.ndarray:
        """A person's reference photos (raw) as one (face_dim,) reference face."""
        return reference_face(self.vectors(landmarks, image_size, blendshapes, pose))

    def features(
        self,
        landmarks: np.ndarray,
        image_size: np.ndarray | None,
        reference: np.ndarray | None = None,
        blendshapes: np.ndarray | None = None,
        pose: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Raw faces as the (N, input_dim) float32 features the model reads; with a
        baseline, against `reference`: a (face_dim,) or (N, face_dim) reference face."""
        vectors = self.vectors(landmarks, image_size, blendshapes, pose)
        if not self.uses_baseline:
            return torch.from_numpy(vectors)
        if reference is None:
            raise ValueError(f"a data.baseline={self.baseline} model needs a reference face")
        return torch.from_numpy(combine(vectors, reference, self.baseline_features))

    def to_record(self) -> dict[str, Any]:
        """Plain values under the data settings' names (`features` is `data.features`)."""
        record = asdict(self)
        record["features"] = record.pop("feature_set")
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Preprocessing:
        """From a checkpoint's record; records older than the baseline have none."""
        return cls(
            normalization=str(record["normalization"]),
            aspect_correction=bool(record.get("aspect_correction", False)),
            baseline=str(record.get("baseline") or "none"),
            enroll_per_subject=int(record.get("enroll_per_subject") or 1),
            baseline_features=str(record.get("baseline_features") or "difference"),
            feature_set=str(record.get("features") or "landmarks"),
        )
