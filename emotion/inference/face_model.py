"""The deployable model, once: `FaceModel`, a torch module from raw face to probabilities.

Evaluation, prediction, serving and export all hold this one module (built by
`emotion.inference.trained.load_trained` from a checkpoint, or several joined by
`emotion.inference.ensemble.load_model`):
- `forward(landmarks, image_size, reference_landmarks, reference_image_size, blendshapes,
  pose, reference_blendshapes, reference_pose)`: RAW FaceLandmarker output in (what the model
  uses of it), probabilities out, the preprocessing in torch ops (the twins of
  `emotion.features.geometry`), which is what `emotion-export` exports;
- `features` + `probabilities`: the same networks on features made by training's numpy path
  (`Preprocessing.features`, which also knows Procrustes, an SVD no ONNX graph can hold).
  tests/test_export.py holds the two paths equal.
An ensemble is N networks inside the same module, each with its own fitted temperature; its
probabilities are the plain mean of theirs.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from emotion.errors import EmotionError
from emotion.features.geometry import aspect_correct_torch, nose_unit_torch, unrotate_torch
from emotion.features.preprocessing import IN_GRAPH_NORMALIZATIONS, Preprocessing
from emotion.features.reference import torch_mean
from emotion.store.schema import LEGACY_EXTRACTOR, describe_extractor, same_extractor


@dataclass(frozen=True)
class Member:
    """Where one network came from: its checkpoint, run and what it recorded."""

    ckpt_path: Path
    run_dir: Path | None
    temperature: float = 1.0  # fitted by calibration=temperature; 1.0 when none was
    run_config: dict[str, Any] = field(default_factory=dict)
    data_record: dict[str, Any] = field(default_factory=dict)  # empty for older checkpoints
    hparams: dict[str, Any] = field(default_factory=dict)
    trained_on_synthetic: bool = False  # read once, when loaded


class FaceModel(nn.Module):
    """(N, 478, 3) raw landmarks [+ (N, 2) image (width, height)] -> (N, C) probabilities.

    A baseline model also takes `reference_landmarks` (N, R, 478, 3) [and
    `reference_image_size` (N, R, 2)]: each row's R reference photos are normalised and
    averaged (`torch_mean`, `Reference`'s torch twin) and the networks read the face against
    that. With no reference photo (R = 0) every probability of the row is NaN, in torch and
    in ONNX alike: the probabilities are multiplied by count / count (1, or NaN), since a
    runtime's operators need not carry a NaN through (a reduction over nothing, an
    activation)."""

    def __init__(
        self,
        networks: list[nn.Module],
        preprocessing: Preprocessing,
        class_names: list[str],
        members: list[Member],
    ) -> None:
        super().__init__()
        if len(networks) != len(members) or not networks:
            raise ValueError("a FaceModel needs one Member record per network, and one or more")
        self.networks = nn.ModuleList(networks)
        self.preprocessing = preprocessing
        self.class_names = list(class_names)
        self.members = list(members)
        self.temperatures = [float(member.temperature) for member in members]
        self.eval()

    # -- what it is ---------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.members)

    @property
    def is_ensemble(self) -> bool:
        return len(self.members) > 1

    @property
    def normalization(self) -> str:
        return self.preprocessing.normalization

    @property
    def aspect_correction(self) -> bool:
        return self.preprocessing.aspect_correction

    @property
    def baseline(self) -> str:
        return self.preprocessing.baseline

    @property
    def uses_baseline(self) -> bool:
        return self.preprocessing.uses_baseline

    @property
    def temperature(self) -> float:
        """The first network's temperature (a single model's)."""
        return self.temperatures[0]

    @property
    def trained_on_synthetic(self) -> bool:
        return any(member.trained_on_synthetic for member in self.members)

    @property
    def extractor(self) -> dict[str, Any]:
        """The landmark extractor of the faces it was trained on (checkpoints older than
        the record: MediaPipe's legacy FaceMesh graph, the only one there was)."""
        return dict(self.members[0].data_record.get("extractor") or LEGACY_EXTRACTOR)

    @property
    def run_config(self) -> dict[str, Any]:
        """The first member's config: where evaluation finds its default data settings."""
        return self.members[0].run_config

    @property
    def run_dir(self) -> Path | None:
        """A single model's run; for an ensemble the folder holding every member's run (the
        sweep directory), if they share one."""
        if not self.is_ensemble:
            return self.members[0].run_dir
        folders = [
            str((member.run_dir or member.ckpt_path.parent).resolve()) for member in self.members
        ]
        common = Path(os.path.commonpath(folders))
        return common if common != Path(common.anchor) else None

    @property
    def checkpoints(self) -> list[Path]:
        return [member.ckpt_path for member in self.members]

    @property
    def description(self) -> str:
        if not self.is_ensemble:
            return str(self.members[0].ckpt_path)
        return f"an ensemble of {len(self.members)} models under {self.run_dir}"

    # -- the networks ----------------------------------------------------------------------

    def scored(self, features: torch.Tensor) -> torch.Tensor:
        """(N, D) features as (N, C) probabilities: each network's softmax of its logits over
        its temperature (which changes no decision, only the confidence), averaged."""
        each = [
            (network(features) / temperature).softmax(dim=1)
            for network, temperature in zip(self.networks, self.temperatures, strict=True)
        ]
        return each[0] if len(each) == 1 else torch.stack(each).mean(dim=0)

    def points(
        self,
        landmarks: torch.Tensor,
        image_size: torch.Tensor | None,
        pose: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """(..., 478, 3) raw landmarks as normalised points, in torch ops: the training
        path's twin (`emotion.features.geometry`)."""
        if self.normalization not in IN_GRAPH_NORMALIZATIONS:
            raise ValueError(
                f"normalisation {self.normalization!r} cannot run in torch ops here; "
                f"only {IN_GRAPH_NORMALIZATIONS} (use features() and probabilities())"
            )
        points = landmarks.float()
        if self.preprocessing.uses_image_size:
            if image_size is None:
                raise ValueError("this model reads landmarks in pixels: pass image_size")
            points = aspect_correct_torch(points, image_size)
        if self.normalization == "pose":
            if pose is None:
                raise ValueError("this model undoes the head's rotation: pass pose")
            points = unrotate_torch(points, pose)
        if self.normalization in ("nose_unit", "pose"):
            points = nose_unit_torch(points)
        return points

    def vectors(
        self,
        landmarks: torch.Tensor | None,
        image_size: torch.Tensor | None,
        blendshapes: torch.Tensor | None,
        pose: torch.Tensor | None,
    ) -> torch.Tensor:
        """(..., 478, 3) raw faces as (..., face_dim) vectors: `Preprocessing.vectors`' twin."""
        parts = []
        if self.preprocessing.uses_landmarks:
            if landmarks is None:
                raise ValueError("this model reads landmarks: pass landmarks")
            parts.append(self.points(landmarks, image_size, pose).flatten(-2))
        if self.preprocessing.uses_blendshapes:
            if blendshapes is None:
                raise ValueError("this model reads blendshape scores: pass blendshapes")
            parts.append(blendshapes.float())
        return parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)

    def forward(
        self,
        landmarks: torch.Tensor | None = None,
        image_size: torch.Tensor | None = None,
        reference_landmarks: torch.Tensor | None = None,
        reference_image_size: torch.Tensor | None = None,
        blendshapes: torch.Tensor | None = None,
        pose: torch.Tensor | None = None,
        reference_blendshapes: torch.Tensor | None = None,
        reference_pose: torch.Tensor | None = None,
    ) -> torch.Tensor:
        vectors = self.vectors(landmarks, image_size, blendshapes, pose)
        if not self.uses_baseline:
            return self.scored(vectors)
        given = reference_landmarks if self.preprocessing.uses_landmarks else reference_blendshapes
        if given is None:
            raise ValueError("this model reads faces against a reference: pass one")
        reference, count = torch_mean(
            self.vectors(
                reference_landmarks, reference_image_size, reference_blendshapes, reference_pose
            )
        )
        features = vectors - reference
        if self.preprocessing.baseline_features == "both":
            features = torch.cat([features, vectors], dim=1)
        return self.scored(features) * (count / count)  # x 1, or NaN without a reference

    # -- training's numpy features -----------------------------------------------------------

    def features(
        self,
        landmarks: np.ndarray,
        image_size: np.ndarray | None,
        reference: np.ndarray | None = None,
        blendshapes: np.ndarray | None = None,
        pose: np.ndarray | None = None,
    ) -> torch.Tensor:
        """Raw faces to the features the networks were trained on; a baseline model reads
        them against `reference`, a (face_dim,) or (N, face_dim) reference face."""
        return self.preprocessing.features(landmarks, image_size, reference, blendshapes, pose)

    def face_features(
        self, faces: Sequence[Any], reference: np.ndarray | None = None
    ) -> torch.Tensor:
        """`features` of face-like items (an extracted Face, a prediction's item)."""
        return self.preprocessing.face_features(faces, reference)

    @torch.inference_mode()
    def probabilities(self, features: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """`scored` in batches, as `trainer.test` computes them."""
        if len(features) == 0:
            return torch.empty(0, len(self.class_names))
        parts = [
            self.scored(features[start : start + batch_size])
            for start in range(0, len(features), batch_size)
        ]
        return torch.cat(parts)


def joined(models: list[FaceModel]) -> FaceModel:
    """Several models as one ensemble: their networks inside one FaceModel. One feature
    tensor feeds every network, so class names and preprocessing must agree."""
    first = models[0]
    for model in models[1:]:
        if not same_extractor(first.extractor, model.extractor):
            raise EmotionError(
                f"ensemble members were trained on faces of different extractors: "
                f"{first.description} on {describe_extractor(first.extractor)}, "
                f"{model.description} on {describe_extractor(model.extractor)}",
                "ensemble runs trained on stores of one extractor",
            )
        mine = {"class_names": first.class_names, **first.preprocessing.to_record()}
        theirs = {"class_names": model.class_names, **model.preprocessing.to_record()}
        for name, value in mine.items():
            if theirs[name] != value:
                raise EmotionError(
                    f"ensemble members differ in {name}: {first.description} has "
                    f"{value!r}, {model.description} has {theirs[name]!r}",
                    "ensemble runs of one recipe (the seeds or folds of one sweep)",
                )
    return FaceModel(
        [network for model in models for network in model.networks],
        first.preprocessing,
        first.class_names,
        [member for model in models for member in model.members],
    )
