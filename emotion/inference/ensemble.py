"""Several trained models as one: probabilities averaged over folds or seeds.

Evaluation, prediction and export take an ensemble wherever they take one model:
  a sweep directory          every run under it (outputs/train/multiruns/<sweep>)
  a quoted glob              'outputs/train/multiruns/<sweep>/*data.fold=0*'
  several arguments          run directories or .ckpt files
Members must share class names and landmark preprocessing, so one feature tensor feeds all.
Each member keeps its own fitted temperature; the ensemble is the plain mean of the members'
probabilities, which is what `probabilities` returns and what the exported graph computes.
"""

from __future__ import annotations

import glob
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotion.errors import EmotionError
from emotion.features.preprocessing import Preprocessing
from emotion.inference.trained import TrainedModel, load_trained
from emotion.inference.unfinished import check_finished, warn_if_unfinished
from emotion.rundir import CHECKPOINT_DIR, resolve_checkpoint

GLOB_CHARACTERS = frozenset("*?[")


@dataclass
class Ensemble:
    """Trained members whose probabilities are averaged."""

    members: list[TrainedModel]

    def __post_init__(self) -> None:
        """One feature tensor feeds every member: class names and preprocessing must agree."""
        first = self.members[0]
        for member in self.members[1:]:
            mine = {"class_names": first.class_names, **first.preprocessing.to_record()}
            theirs = {"class_names": member.class_names, **member.preprocessing.to_record()}
            for name, value in mine.items():
                if theirs[name] != value:
                    raise EmotionError(
                        f"ensemble members differ in {name}: {first.ckpt_path} has "
                        f"{value!r}, {member.ckpt_path} has {theirs[name]!r}",
                        "ensemble runs of one recipe (the seeds or folds of one sweep)",
                    )

    @property
    def class_names(self) -> list[str]:
        return self.members[0].class_names

    @property
    def preprocessing(self) -> Preprocessing:
        return self.members[0].preprocessing

    @property
    def normalization(self) -> str:
        return self.members[0].normalization

    @property
    def aspect_correction(self) -> bool:
        return self.members[0].aspect_correction

    @property
    def trained_on_synthetic(self) -> bool:
        return any(member.trained_on_synthetic for member in self.members)

    @property
    def run_config(self) -> dict[str, Any]:
        """The first member's config: where evaluation finds its default data settings."""
        return self.members[0].run_config

    @property
    def run_dir(self) -> Path | None:
        """The folder holding every member's run (the sweep directory), if they share one."""
        folders = [str((member.run_dir or member.ckpt_path.parent).resolve()) for member in self]
        common = Path(os.path.commonpath(folders))
        return common if common != Path(common.anchor) else None

    @property
    def checkpoints(self) -> list[Path]:
        return [member.ckpt_path for member in self.members]

    @property
    def description(self) -> str:
        return f"an ensemble of {len(self.members)} models under {self.run_dir}"

    def __iter__(self) -> Any:
        return iter(self.members)

    def __len__(self) -> int:
        return len(self.members)

    def features(
        self,
        landmarks: np.ndarray,
        image_size: np.ndarray | None,
        reference: np.ndarray | None = None,
    ) -> torch.Tensor:
        return self.members[0].features(landmarks, image_size, reference)

    def probabilities(self, features: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """The mean of the members' probabilities (each with its own temperature)."""
        stacked = torch.stack([member.probabilities(features, batch_size) for member in self])
        return stacked.mean(dim=0)


def checkpoints_of(argument: str) -> list[Path]:
    """A model argument as checkpoints: a .ckpt, a run directory (its best checkpoint), a
    sweep directory (every run under it) or a glob of any of these. A run directory whose
    training has not finished is refused; a .ckpt of one is taken, with a warning."""
    if any(character in GLOB_CHARACTERS for character in argument) and not Path(argument).exists():
        matches = sorted(glob.glob(argument))
        if not matches:
            raise EmotionError(f"{argument} matches no file or folder", "check the pattern")
        return [path for match in matches for path in checkpoints_of(match)]
    path = Path(argument)
    if path.is_file():
        warn_if_unfinished(path)  # named explicitly: taken as it is
        return [resolve_checkpoint(argument, None)]
    if path.is_dir() and not (path / CHECKPOINT_DIR).is_dir():
        runs = sorted(folder.parent for folder in path.rglob(CHECKPOINT_DIR) if folder.is_dir())
        if runs:
            check_finished(runs, argument)
            return [resolve_checkpoint(None, str(run)) for run in runs]
    if path.is_dir():
        check_finished([path], argument)
    return [resolve_checkpoint(None, argument)]


def load_model(arguments: str | Sequence[str]) -> TrainedModel | Ensemble:
    """One model, or an ensemble when the arguments name more than one checkpoint."""
    names = [arguments] if isinstance(arguments, str) else list(arguments)
    checkpoints = [path for name in names for path in checkpoints_of(str(name))]
    unique = list(dict.fromkeys(path.resolve() for path in checkpoints))
    if len(unique) == 1:
        return load_trained(checkpoints[0])
    return Ensemble([load_trained(path) for path in unique])


def members_of(model: TrainedModel | Ensemble) -> list[TrainedModel]:
    return list(model) if isinstance(model, Ensemble) else [model]


def check_people_unseen(
    model: TrainedModel | Ensemble, split: str, people: set[str], data_path: str
) -> None:
    """Refuse to score an ensemble on people one of its members trained on.

    A member whose own `split` is exactly these people (a seed of the same fold) is held to
    what a single model is; any other member (another fold) must not have seen any of them
    in its training or validation rows, or the score would be inflated.
    """
    if not isinstance(model, Ensemble):
        return
    for member in model:
        record = member.data_record
        stages = record.get("subjects") or {}
        if not stages:
            continue  # older checkpoints carry no record; nothing to check against
        same_store = Path(str(record.get("path", ""))).resolve() == Path(data_path).resolve()
        if same_store and set(stages.get(split, [])) == people:
            continue
        seen = (set(stages.get("train", [])) | set(stages.get("val", []))) & people
        if seen:
            raise EmotionError(
                f"ensemble member {member.ckpt_path} trained on {len(seen)} of the "
                f"{len(people)} people of this {split} split (e.g. {sorted(seen)[:3]}); "
                "their score would be inflated",
                "evaluate a fold ensemble on people none of its members saw (another store: "
                "data.path=...), or ensemble the seeds of one fold "
                "('outputs/train/multiruns/<sweep>/data.fold=0,seed=*')",
            )
