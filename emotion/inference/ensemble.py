"""Several trained models as one: probabilities averaged over folds or seeds.

Evaluation, prediction and export take an ensemble wherever they take one model:
  a sweep directory          every run under it (outputs/train/multiruns/<sweep>)
  a quoted glob              'outputs/train/multiruns/<sweep>/*data.fold=0*'
  several arguments          run directories or .ckpt files
Members must share class names and landmark preprocessing, so one feature tensor feeds all;
their networks go inside one `FaceModel`, each with its own fitted temperature, and the
ensemble's probabilities are the plain mean of theirs, in torch and in the exported graph.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from pathlib import Path

from emotion.errors import EmotionError
from emotion.inference.face_model import FaceModel, Member, joined
from emotion.inference.trained import load_trained
from emotion.inference.unfinished import check_finished, warn_if_unfinished
from emotion.rundir import CHECKPOINT_DIR, HYDRA_CONFIG, resolve_checkpoint

GLOB_CHARACTERS = frozenset("*?[")


def checkpoints_of(argument: str) -> list[Path]:
    """A model argument as checkpoints: a .ckpt, a run directory (its best checkpoint), a
    sweep directory (every run under it) or a glob of any of these. A run directory whose
    training has not finished is refused; a .ckpt of one is taken, with a warning."""
    if any(character in GLOB_CHARACTERS for character in argument) and not Path(argument).exists():
        matches = sorted(glob.glob(argument))
        if not matches:
            raise EmotionError(f"{argument} matches no file or folder", "check the pattern")
        # `runs/*` matches runs/latest too, a link to one of the others: each run once. A
        # folder that is no run (an evaluation's output beside the runs) is not a member.
        runs = [match for match in matches if not not_a_run(Path(match))]
        if not runs:
            raise EmotionError(f"{argument} matches no run", "check the pattern")
        found = [path for match in runs for path in checkpoints_of(match)]
        return list({path.resolve(): path for path in found}.values())
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


def not_a_run(path: Path) -> bool:
    """A folder with no checkpoints in or under it and no training config: e.g. an
    evaluation's output (`eval-ensemble-*`) inside a sweep folder."""
    return (
        path.is_dir()
        and not (path / HYDRA_CONFIG).is_file()
        and not any(path.rglob(CHECKPOINT_DIR))
    )


def load_model(arguments: str | Sequence[str]) -> FaceModel:
    """One model, or an ensemble (its networks in one FaceModel) when the arguments name more
    than one checkpoint."""
    names = [arguments] if isinstance(arguments, str) else list(arguments)
    checkpoints = [path for name in names for path in checkpoints_of(str(name))]
    unique = list(dict.fromkeys(path.resolve() for path in checkpoints))
    if len(unique) == 1:
        return load_trained(checkpoints[0])
    return joined([load_trained(path) for path in unique])


def members_of(model: FaceModel) -> list[Member]:
    """Where each of the model's networks came from (one record for a single model)."""
    return list(model.members)


def check_people_unseen(model: FaceModel, split: str, people: set[str], data_path: str) -> None:
    """Refuse to score an ensemble on people one of its members trained on.

    A member whose own `split` is exactly these people (a seed of the same fold) is held to
    what a single model is; any other member (another fold) must not have seen any of them
    in its training or validation rows, or the score would be inflated.
    """
    if not model.is_ensemble:
        return
    for member in model.members:
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
