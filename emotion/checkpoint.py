"""The checkpoint contract: everything an `emotion-train` checkpoint carries, named, written
and read in this one place.

A checkpoint is Lightning's dict (`state_dict`, `hyper_parameters`, `epoch`, ...) plus:

    val_metrics             {"val/...": float}: the validation metrics it was chosen by
    temperature             float, fitted by `calibration=temperature` (absent otherwise)
    LandmarkDataModule      the data module's state_dict() (`emotion.data.record`):
      landmark_preprocessing  {store_schema_version, normalization, aspect_correction,
                              baseline, enroll_per_subject, baseline_features, features}: how
                              raw faces become its input (`emotion.features.preprocessing`)
      data_settings           what it was trained on: geometry, classes, store path, whether
                              the store is SYNTHETIC, the landmark extractor of its faces
                              (name, mediapipe version, model sha256), the split settings and
                              the people per stage

Checkpoints written before the data module kept that record carry its two sections at the top
level; `section` reads either.

Every value is plain (numbers, strings, lists, dicts), so `torch.load(weights_only=True)`
reads it and `LandmarkClassifier(**hyper_parameters)` rebuilds the network without a config.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from emotion.errors import EmotionError
from emotion.features.preprocessing import NORMALIZATIONS, Preprocessing
from emotion.store.schema import READABLE_VERSIONS, SCHEMA_VERSION

STATE_DICT_KEY = "state_dict"
HYPER_PARAMETERS_KEY = "hyper_parameters"
VAL_METRICS_KEY = "val_metrics"
# The data module's record sections; the same names as emotion.data.record's (this room reads
# the record as plain values and does not import the data room).
PREPROCESSING_KEY = "landmark_preprocessing"
DATA_SETTINGS_KEY = "data_settings"
TEMPERATURE_KEY = "temperature"
# Where Lightning saves a data module's state_dict(): under the module's class name.
DATAMODULE_STATE_KEY = "LandmarkDataModule"

# Hyperparameters that define the network, per `architecture` (emotion.models.choices): a
# checkpoint only resumes into the same ones. A checkpoint without the key predates the linear
# model and holds a residual MLP.
ARCHITECTURE_KEY = "architecture"
DEFAULT_ARCHITECTURE = "residual_mlp"
ARCHITECTURE_KEYS = {
    "residual_mlp": (
        "input_dim",
        "class_names",
        "width",
        "depth",
        "head_width",
        "dropout",
        "head_dropout",
    ),
    "linear": ("input_dim", "class_names"),
}
# Data settings that change what a feature vector means; a trunk only transfers when they match.
GEOMETRY_KEYS = ("normalization", "aspect_correction", "features", "input_dim")


# -- writing (LandmarkClassifier.on_save_checkpoint, calibration) --------------------------------


def record_training(checkpoint: dict[str, Any], val_metrics: dict[str, float]) -> None:
    """What the model adds to the checkpoint Lightning is saving (the data module adds its
    own record through its state_dict)."""
    checkpoint[VAL_METRICS_KEY] = dict(val_metrics)


def write_temperature(path: str | Path, temperature: float) -> None:
    """Store a fitted softmax temperature in an existing checkpoint file, atomically: a
    temporary file beside it, synced, then renamed over it, so a crash leaves the old file."""
    path = Path(path)
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    checkpoint[TEMPERATURE_KEY] = float(temperature)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        with temporary.open("wb") as handle:
            torch.save(checkpoint, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


def section(checkpoint: dict[str, Any], key: str) -> Any:
    """One section of the data module's record: in its state (Lightning saves it under the
    module's class name), or at the checkpoint's top level in older checkpoints."""
    state = checkpoint.get(DATAMODULE_STATE_KEY)
    if isinstance(state, dict) and key in state:
        return state[key]
    return checkpoint.get(key)


# -- reading -------------------------------------------------------------------------------------


def read_checkpoint(
    path: str | Path, fix: str = "pass a .ckpt written by emotion-train"
) -> dict[str, Any]:
    """torch.load with weights_only=True; a missing, corrupt or foreign file is a user error."""
    if not Path(path).is_file():
        raise EmotionError(f"checkpoint {path} does not exist", fix)
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # garbage makes torch.load raise anything: KeyError on text
        raise EmotionError(
            f"{path} is not a readable PyTorch checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200] if str(error) else 'no detail'})",
            fix,
        ) from None
    if not isinstance(checkpoint, dict) or not {STATE_DICT_KEY, HYPER_PARAMETERS_KEY} <= set(
        checkpoint
    ):
        raise EmotionError(
            f"{path} is not a Lightning checkpoint of emotion-train (no state_dict and "
            "hyper_parameters)",
            fix,
        )
    return checkpoint


def hyperparameters(checkpoint: dict[str, Any]) -> dict[str, Any]:
    return dict(checkpoint.get(HYPER_PARAMETERS_KEY, {}))


def architecture_of(hparams: dict[str, Any]) -> str:
    """The network's kind, as a plain string; residual_mlp for checkpoints older than the key."""
    value = hparams.get(ARCHITECTURE_KEY) or DEFAULT_ARCHITECTURE
    return str(getattr(value, "value", value))


def val_metrics(checkpoint: dict[str, Any]) -> dict[str, float]:
    return dict(checkpoint.get(VAL_METRICS_KEY, {}))


def data_record_of(checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The data record; empty for checkpoints older than it."""
    return dict(section(checkpoint, DATA_SETTINGS_KEY) or {})


def temperature_of(checkpoint: dict[str, Any]) -> float:
    return float(checkpoint.get(TEMPERATURE_KEY) or 1.0)


def preprocessing_of(
    checkpoint: dict[str, Any], run_config: dict[str, Any], path: Path
) -> Preprocessing:
    """The checkpoint's landmark preprocessing; for checkpoints older than that record, the
    run's saved config beside it. Without either, refuse to guess."""
    stored = section(checkpoint, PREPROCESSING_KEY)
    if stored is None:
        data = run_config.get("data") or {}
        if "normalization" not in data:
            raise EmotionError(
                f"{path} does not say how its landmarks were normalised, and no run config "
                "(metrics.json or .hydra/config.yaml) was found beside it",
                "keep the checkpoint inside its run directory (<run_dir>/checkpoints/), or "
                "retrain with this version of emotion-train",
            )
        stored = {"store_schema_version": SCHEMA_VERSION, **data}
    version = stored.get("store_schema_version")
    if version not in READABLE_VERSIONS:
        raise EmotionError(
            f"{path} was trained on landmark store schema v{version}; this version reads "
            f"{' and '.join(f'v{known}' for known in READABLE_VERSIONS)}",
            "retrain the model with this version of emotion-train",
        )
    if stored["normalization"] == "subject_neutral":
        raise EmotionError(
            f"{path} was trained with data.normalization=subject_neutral, which the personal "
            "baseline replaced: its validation and test people never had a reference",
            "retrain with data.baseline=enrolled (or session)",
        )
    if stored["normalization"] not in NORMALIZATIONS:
        raise EmotionError(f"{path} uses an unknown normalisation {stored['normalization']!r}")
    return Preprocessing.from_record(stored)


def check_finite_weights(checkpoint: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint holding NaN or inf: every probability it gives would be NaN."""
    broken = [
        name
        for name, value in checkpoint[STATE_DICT_KEY].items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]
    if broken:
        raise EmotionError(
            f"{path} holds NaN or infinite weights ({len(broken)} tensors, e.g. {broken[0]})",
            "use an earlier checkpoint of that run; the training that wrote this one diverged",
        )


def check_same_architecture(
    path: str | Path, saved: dict[str, Any], wanted: dict[str, Any]
) -> None:
    """Refuse to resume the checkpoint at `path`, whose hyperparameters are `saved` (read once
    by the caller), into a different model, naming the keys that differ."""
    old, new = architecture_of(saved), architecture_of(wanted)
    if old != new:  # the other keys mean nothing across kinds of network
        changed = {ARCHITECTURE_KEY: (old, new)}
    else:
        changed = {
            key: (saved.get(key), wanted.get(key))
            for key in ARCHITECTURE_KEYS.get(new, ())
            if key in saved and saved.get(key) != wanted.get(key)
        }
    if changed:
        shown = ", ".join(f"{key}: {was} -> {now}" for key, (was, now) in changed.items())
        raise EmotionError(
            f"{path} holds a different model ({shown})",
            "pick another run_name=... for the new model, or start over with overwrite=true",
        )
