"""What a checkpoint records of the data a model was trained on, as plain values.

The data module hands this record to Lightning through its `state_dict()`, so every
checkpoint carries it without the model or checkpoint rooms knowing the data module: a trunk
is only reusable on features made the same way, and a model only honestly tested on people it
never saw, and both checks need the record to travel with the checkpoint alone.
"""

from __future__ import annotations

from typing import Any

from emotion.data.settings import DataSettings
from emotion.errors import EmotionError
from emotion.features.preprocessing import Preprocessing
from emotion.store.schema import SCHEMA_VERSION

# The record's two sections, under these names in the data module's state and (in older
# checkpoints) at the top of the checkpoint (`emotion.checkpoint` reads both).
DATA_SETTINGS_KEY = "data_settings"
PREPROCESSING_KEY = "landmark_preprocessing"
STAGES = ("train", "val", "test")


def preprocessing_record(preprocessing: Preprocessing) -> dict[str, Any]:
    return {"store_schema_version": SCHEMA_VERSION, **preprocessing.to_record()}


def data_record(
    settings: DataSettings,
    *,
    input_dim: int,
    class_names: list[str],
    synthetic: bool,
    subjects: dict[str, list[str]],
    extractor: dict[str, Any],
) -> dict[str, Any]:
    """How the inputs were made, by which landmark extractor, and which people the model saw."""
    return {
        "extractor": dict(extractor),
        "normalization": settings.normalization,
        "aspect_correction": bool(settings.aspect_correction),
        "features": settings.features,
        "input_dim": int(input_dim),
        "class_names": [str(name) for name in class_names],
        "path": str(settings.path),
        "synthetic": bool(synthetic),
        "split_strategy": settings.split_strategy,
        "val_fraction": float(settings.val_fraction),
        "min_val_subjects": int(settings.min_val_subjects),
        "drop_overlap": bool(settings.drop_overlap),
        "fold": int(settings.fold),
        "num_folds": int(settings.num_folds),
        "split_seed": int(settings.split_seed),
        "subjects": {stage: sorted(set(subjects.get(stage, []))) for stage in STAGES},
    }


def check_same_preprocessing(saved: dict[str, Any] | None, preprocessing: Preprocessing) -> None:
    """Refuse to resume a checkpoint whose features were made another way: they would mean
    something else to the network. Checkpoints without the record are not checked."""
    if not saved:
        return
    current = preprocessing_record(preprocessing)
    changed = sorted(key for key in current if saved.get(key) != current[key])
    if changed:
        differences = ", ".join(
            f"data.{key} was {saved.get(key)!r}, now {current[key]!r}" for key in changed
        )
        raise EmotionError(
            f"the checkpoint being resumed made its features another way: {differences}",
            "resume with the run's own data settings, or start a new run (another run_name)",
        )


def check_same_people(saved: dict[str, Any] | None, now: dict[str, Any], store: str) -> None:
    """Refuse to resume a checkpoint trained on other people: the same run_name on another
    store would otherwise resume silently. Checkpoints without the record are not checked."""
    people = (saved or {}).get("subjects")
    if not people:
        return
    changed = [stage for stage in STAGES if sorted(people.get(stage, [])) != now["subjects"][stage]]
    if changed:
        stage = changed[0]
        raise EmotionError(
            f"the checkpoint to resume was trained on other people: its {stage} split "
            f"({len(people.get(stage, []))} people, store {saved.get('path')}) is not this "
            f"run's ({len(now['subjects'][stage])} people, store {store})",
            "a run directory holds one data set's run: give this one another run_name=..., "
            "or start over with overwrite=true",
        )
