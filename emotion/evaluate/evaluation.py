"""`evaluate(cfg)`: score one split of a store with a trained model (or an ensemble) and
write the report. The model comes from its checkpoint alone; the data settings from its run.
"""

from __future__ import annotations

import csv
import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf

from emotion.data.datamodule import LandmarkDataModule
from emotion.data.describe import few_people_caveat
from emotion.data.settings import DataSettings
from emotion.errors import EmotionError
from emotion.evaluate.bootstrap import subject_bootstrap
from emotion.evaluate.curves import reliability_bins
from emotion.evaluate.folders import evaluation_folder
from emotion.evaluate.publish import check_output_dir, staged_output_dir
from emotion.evaluate.report import PREDICTIONS_CSV, markdown, write_outputs
from emotion.evaluate.scores import confusion_counts, point_metrics, row_normalized
from emotion.evaluate.threshold import operating_point
from emotion.inference.ensemble import check_people_unseen, load_model, members_of
from emotion.inference.face_model import FaceModel
from emotion.inference.trained import check_class_names, check_extractor

log = logging.getLogger(__name__)

# Split settings a checkpoint records (emotion.checkpoint.data_record): enough to rebuild its
# split when the checkpoint travels without its run directory.
RECORDED_SPLIT_KEYS = (
    "path",
    "split_strategy",
    "val_fraction",
    "min_val_subjects",
    "drop_overlap",
    "fold",
    "num_folds",
    "split_seed",
)


@dataclass
class Scored:
    """One split's rows as the model scored them."""

    probabilities: torch.Tensor
    labels: torch.Tensor
    subjects: np.ndarray
    sources: np.ndarray


def model_arguments(cfg: DictConfig) -> list[str]:
    """ckpt_path or run_dir, each one path or a list (several paths: an ensemble)."""
    chosen = cfg.ckpt_path if cfg.ckpt_path else cfg.run_dir
    if not chosen:
        raise EmotionError(
            "no model given",
            "emotion-eval outputs/train/runs/<run_name> (or a .ckpt, or a sweep folder for an "
            "ensemble)",
        )
    if isinstance(chosen, str):
        return [chosen]
    return [str(item) for item in chosen]


def data_settings(trained: FaceModel, overrides: dict[str, Any]) -> dict[str, Any]:
    """The run's saved data settings (else the checkpoint's own record), with the non-null
    overrides on top; the preprocessing from the checkpoint; no training noise."""
    saved = dict(trained.run_config.get("data") or {})
    if not saved:
        record = members_of(trained)[0].data_record
        saved = {key: record[key] for key in RECORDED_SPLIT_KEYS if key in record}
    settings = {key: value for key, value in saved.items() if key in DataSettings.names()}
    settings.update({key: value for key, value in overrides.items() if value is not None})
    if not settings.get("path"):
        raise EmotionError(
            f"no data store: {trained.description} has no run config beside it naming one",
            "pass data.path=<store.h5>",
        )
    if "${" in str(settings["path"]):  # a setting of Hydra's runtime, known only in the run
        raise EmotionError(
            f"the run config beside {trained.description} names its data store as "
            f"{settings['path']}, which can only be resolved inside that training run",
            "pass data.path=<store.h5>",
        )
    settings.update(trained.preprocessing.to_record(), noise_std=0.0)
    return settings


def scored_split(trained: FaceModel, datamodule: LandmarkDataModule, split: str) -> Scored:
    rows = datamodule.rows(split)
    batch = datamodule.settings.eval_batch_size
    probabilities = trained.probabilities(rows.features, batch)
    return Scored(probabilities, rows.labels, datamodule.subjects(split), datamodule.sources(split))


def check_split_has_rows(datamodule: LandmarkDataModule, split: str) -> None:
    """An empty split has no report: refuse it rather than write one of NaNs."""
    if len(datamodule.rows(split)):
        return
    why = datamodule.summary.get("no_validation_split") if split == "val" else None
    raise EmotionError(
        f"split={split} holds no rows of {datamodule.path} under this run's data settings"
        + (f" ({why})" if why else ""),
        "evaluate split=test (the default); for a validation report, carve one with "
        "data.val_fraction=0.15 data.min_val_subjects=0",
    )


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score one split of a store with a checkpoint; write and return the report's numbers.
    `cfg` is eval.yaml composed and checked (emotion.evaluate.settings)."""
    if cfg.output_dir:  # before anything is read (the default folder: when writing)
        check_output_dir(Path(cfg.output_dir))
    trained = load_model(model_arguments(cfg))
    overrides = OmegaConf.to_container(cfg.data, resolve=True)
    datamodule = LandmarkDataModule(**data_settings(trained, overrides))  # type: ignore[arg-type]
    datamodule.setup()
    check_class_names(trained, datamodule.class_names, f"store {datamodule.path}")
    check_extractor(trained, datamodule.extractor, f"the store {datamodule.path}")
    check_split_has_rows(datamodule, cfg.split)
    people = {str(person) for person in datamodule.subjects(cfg.split).tolist()}
    check_people_unseen(trained, cfg.split, people, str(datamodule.path))

    scored = scored_split(trained, datamodule, cfg.split)
    result = build_result(cfg, trained, datamodule, scored)
    for caveat in result["caveats"]:
        log.warning("%s", caveat)
    if cfg.threshold.target_recall is not None:
        val = scored_split(trained, datamodule, "val")
        result["operating_point"] = operating_point(
            (val.probabilities, val.labels),
            (scored.probabilities, scored.labels),
            trained.class_names,
            cfg.threshold.positive_class,
            float(cfg.threshold.target_recall),
        )
    output_dir = Path(cfg.output_dir) if cfg.output_dir else evaluation_folder(trained, cfg)
    result["output_dir"] = str(output_dir)
    with staged_output_dir(output_dir) as staging:  # published whole, or not at all
        write_outputs(result, staging, cfg.tensorboard, scored.probabilities, scored.labels.long())
        write_predictions(staging / PREDICTIONS_CSV, scored, trained.class_names)
    log.info("%s", markdown(result))
    log.info("wrote %s", output_dir)
    return result


def build_result(
    cfg: DictConfig,
    trained: FaceModel,
    datamodule: LandmarkDataModule,
    scored: Scored,
) -> dict[str, Any]:
    """What metrics.json holds: the model, the data, point metrics, intervals, confusion."""
    names = trained.class_names
    confusion = confusion_counts(scored.probabilities, scored.labels, len(names))
    bootstrap = {
        "unit": "subject",
        "resamples": cfg.bootstrap.resamples,
        "confidence": cfg.bootstrap.confidence,
        "seed": cfg.bootstrap.seed,
        "method": "percentile",
    }
    return {
        "split": cfg.split,
        **model_description(trained),
        "metrics": point_metrics(
            scored.probabilities, scored.labels, names, cfg.split, cfg.calibration_bins
        ),
        "intervals": subject_bootstrap(
            scored.probabilities,
            scored.labels,
            scored.subjects,
            names,
            cfg.split,
            resamples=cfg.bootstrap.resamples,
            confidence=cfg.bootstrap.confidence,
            seed=cfg.bootstrap.seed,
            calibration_bins=cfg.calibration_bins,
        ),
        "bootstrap": bootstrap,
        "reliability": {
            "binned": "top probability, equal-width bins (the ECE's)",
            "bins": reliability_bins(scored.probabilities, scored.labels, cfg.calibration_bins),
        },
        "roc": {"positive_class": roc_class(names, cfg.threshold.positive_class)},
        "confusion_matrix": {
            "rows": "true class",
            "columns": "predicted class",
            "counts": confusion.tolist(),
            "row_normalised": row_normalized(confusion).round(6).tolist(),
        },
        "counts": split_counts(datamodule, cfg.split),
        "caveats": [
            caveat
            for caveat in [few_people_caveat(cfg.split, len(set(scored.subjects.tolist())))]
            if caveat is not None
        ],
        "data": datamodule.summary,
        "baseline": baseline_description(datamodule, cfg.split),
        "data_settings": {
            key: value
            for key, value in dataclasses.asdict(datamodule.settings).items()
            if key != "synthetic"
        },
    }


def roc_class(class_names: list[str], positive: str) -> str:
    """The class whose ROC curve is drawn: the screen's (threshold.positive_class) when the
    model has it, else its last class."""
    return positive if positive in class_names else class_names[-1]


def baseline_description(datamodule: LandmarkDataModule, split: str) -> dict[str, Any] | None:
    """The personal-baseline protocol as applied to the scored split: the reference photos of
    each person, the scored rows, the people left unscored."""
    summary = datamodule.summary.get("baseline")
    if summary is None:
        return None
    return {
        "protocol": summary["protocol"],
        "enroll_per_subject": summary["enroll_per_subject"],
        "features": summary["features"],
        **summary["stages"][split],
        "reference_photos": datamodule.reference_sources.get(split, {}),
    }


def write_predictions(path: Path, scored: Scored, class_names: list[str]) -> None:
    """One row per scored photo: source, person, true class and probabilities."""
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["source", "subject", "label", *(f"p_{name}" for name in class_names)])
        for source, subject, label, probabilities in zip(
            scored.sources.tolist(),
            scored.subjects.tolist(),
            scored.labels.tolist(),
            scored.probabilities.tolist(),
            strict=True,
        ):
            writer.writerow([source, subject, class_names[label], *probabilities])


def model_description(trained: FaceModel) -> dict[str, Any]:
    ensemble = trained.is_ensemble
    return {
        "ckpt_path": trained.description,
        "run_dir": str(trained.run_dir) if trained.run_dir else None,
        "ensemble": [str(path) for path in trained.checkpoints] if ensemble else None,
        "seed": None if ensemble else trained.run_config.get("seed"),
        "temperature": [member.temperature for member in members_of(trained)],
        "class_names": trained.class_names,
        "normalization": trained.normalization,
        "aspect_correction": trained.aspect_correction,
        "trained_on_synthetic": trained.trained_on_synthetic,
    }


def split_counts(datamodule: LandmarkDataModule, split: str) -> dict[str, Any]:
    summary = datamodule.summary
    stage = summary["stages"][split]
    return {
        "photos": stage["rows"],
        "subjects": stage["subjects"],
        "people": stage.get("people") or sorted({str(p) for p in datamodule.subjects(split)}),
        "photos_per_class": stage["rows_per_class"],
        "test_subjects_seen_in_training": summary["test_subjects_seen_in_training"],
        "test_rows_dropped_for_overlap": summary["test_rows_dropped_for_overlap"],
    }
