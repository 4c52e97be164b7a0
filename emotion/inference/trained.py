"""A checkpoint as evaluation, prediction, serving and export meet it: one `FaceModel`.

The model and its class names come from the checkpoint, never from today's config defaults.
How raw landmarks become features (normalisation, aspect correction) comes from the
checkpoint too (`landmark_preprocessing`, written since the evaluation branch), or, for older
checkpoints, from the run's saved config. So does a temperature fitted by
`calibration=temperature`, which every probability then uses.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path
from typing import Any

from emotion.checkpoint import (
    check_finite_weights,
    data_record_of,
    hyperparameters,
    preprocessing_of,
    read_checkpoint,
    temperature_of,
)
from emotion.errors import EmotionError
from emotion.facemesh.landmarker import extractor_identity
from emotion.inference.face_model import FaceModel, Member
from emotion.models.classifier import LandmarkClassifier
from emotion.rundir import METRICS_FILE, run_dir_of, saved_run_config
from emotion.store.schema import (
    NUM_COORDS,
    NUM_LANDMARKS,
    SCHEMA_VERSION,
    describe_extractor,
    same_extractor,
)

log = logging.getLogger(__name__)


def synthetic_of(
    data_record: dict[str, Any], run_dir: Path | None, run_config: dict[str, Any]
) -> bool:
    """Whether the training data was SYNTHETIC: the checkpoint's record, else the run's
    metrics.json (older checkpoints), else the store its config names says so."""
    if "synthetic" in data_record:
        return bool(data_record["synthetic"])
    if run_dir is not None and (run_dir / METRICS_FILE).is_file():
        metrics = json.loads((run_dir / METRICS_FILE).read_text())
        if "synthetic_data" in metrics:
            return bool(metrics["synthetic_data"])
    return bool((run_config.get("data") or {}).get("synthetic"))


def load_trained(ckpt_path: Path) -> FaceModel:
    """The checkpoint's FaceModel, rebuilt from the checkpoint alone, in eval mode on the CPU."""
    checkpoint = read_checkpoint(
        ckpt_path, "pass a .ckpt written by emotion-train (checkpoints/best-*.ckpt or last.ckpt)"
    )
    hparams = hyperparameters(checkpoint)
    run_dir = run_dir_of(ckpt_path)
    run_config = saved_run_config(run_dir)
    preprocessing = preprocessing_of(checkpoint, run_config, ckpt_path)
    if hparams.get("input_dim") != preprocessing.input_dim:
        raise EmotionError(
            f"{ckpt_path} expects {hparams.get('input_dim')} features, not the "
            f"{NUM_LANDMARKS} x {NUM_COORDS} landmarks of store schema v{SCHEMA_VERSION}",
            "use a checkpoint written by this version of emotion-train",
        )
    check_finite_weights(checkpoint, ckpt_path)
    try:
        model = LandmarkClassifier(**hparams)
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, RuntimeError) as error:
        raise EmotionError(
            f"{ckpt_path} does not fit this version's LandmarkClassifier: "
            f"{str(error).splitlines()[0][:300]}",
            "use a checkpoint written by this version of emotion-train",
        ) from None
    record = data_record_of(checkpoint)
    member = Member(
        ckpt_path=ckpt_path,
        run_dir=run_dir,
        temperature=temperature_of(checkpoint),
        run_config=run_config,
        data_record=record,
        hparams=dict(hparams),
        trained_on_synthetic=synthetic_of(record, run_dir, run_config),
    )
    return FaceModel([model.model], preprocessing, list(hparams["class_names"]), [member])


def warn_synthetic(description: str) -> None:
    """Say on stderr, once per command, that a model never saw a real face."""
    print(
        f"warning: {description} was trained on SYNTHETIC landmarks (generated, not real "
        "faces); its probabilities on real photos say little. Train on extracted photos "
        "(emotion-train data=store data.path=...) before using it on people.",
        file=sys.stderr,
    )


def check_reference_given(trained: Any, given: bool, how: str) -> None:
    """Refuse to score a baseline model against nothing: it reads a change from a reference."""
    if trained.preprocessing.uses_baseline and not given:
        raise EmotionError(
            f"{trained.description} reads each face against the person's reference face "
            f"(data.baseline={trained.preprocessing.baseline}), and none was given",
            how,
        )


def check_extractor(trained: Any, extractor: dict[str, Any], where: str) -> None:
    """Refuse faces of another landmark extractor than the model's: FaceLandmarker's and the
    legacy FaceMesh graph's landmarks differ by four times the training noise, so a model
    reads one as a distorted version of the other and its scores mean nothing."""
    if not same_extractor(trained.extractor, extractor):
        raise EmotionError(
            f"{where} holds faces of {describe_extractor(extractor)}, but "
            f"{trained.description} was trained on faces of "
            f"{describe_extractor(trained.extractor)}; their landmarks are not interchangeable",
            "re-extract the photos with this version (emotion-extract), or retrain the model "
            "on a store extracted with this version (emotion-train data.path=...)",
        )


def check_current_extractor(trained: Any) -> None:
    """Photos are read by this package's FaceLandmarker: refuse a model trained on another
    extractor's faces (predict, serve and export)."""
    check_extractor(trained, extractor_identity(), "this version's landmark extractor")


def check_class_names(trained: Any, data_class_names: list[str], where: str) -> None:
    """Refuse data labelled with another class set: indices would mean other emotions."""
    if list(data_class_names) != trained.class_names:
        raise EmotionError(
            f"{where} has classes {list(data_class_names)}, but the model "
            f"{trained.description} was trained on {trained.class_names}",
            "evaluate on a store extracted with the same class set (emotion-extract classes=...)",
        )
