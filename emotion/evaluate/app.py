"""`emotion-eval`: a thin Hydra wrapper around `evaluate(cfg)`, which does the work.

emotion-eval outputs/train/runs/default                  # the same as run_dir=...
emotion-eval run_dir=outputs/train/runs/default threshold.target_recall=0.9
emotion-eval ckpt_path=path/to/best.ckpt data.path=data/other.h5 output_dir=eval/other
emotion-eval run_dir="outputs/train/multiruns/seeds/*"        # an ensemble (emotion.ensemble)
"""

from __future__ import annotations

import inspect
import logging
import sys
from pathlib import Path
from typing import Any

import hydra
from omegaconf import DictConfig, OmegaConf

from emotion import CONFIG_DIR
from emotion.cli import positional_paths_as_override
from emotion.data.datamodule import STAGES, LandmarkDataModule
from emotion.ensemble import Ensemble, check_people_unseen, load_model, members_of
from emotion.errors import EmotionError, exit_on_user_error
from emotion.evaluate.bootstrap import subject_bootstrap
from emotion.evaluate.report import REPORT_MD, write_outputs
from emotion.evaluate.scores import confusion_counts, point_metrics, row_normalised
from emotion.evaluate.threshold import operating_point
from emotion.trained import TrainedModel, check_class_names

log = logging.getLogger(__name__)

DATAMODULE_ARGS = set(inspect.signature(LandmarkDataModule.__init__).parameters) - {"self"}


def model_arguments(cfg: DictConfig) -> list[str]:
    """ckpt_path or run_dir, each one path or a list (several paths: an ensemble)."""
    chosen = cfg.ckpt_path if cfg.ckpt_path else cfg.run_dir
    if not chosen:
        raise EmotionError(
            "no model given",
            "pass run_dir=outputs/train/runs/<run_name> (or a sweep folder for an ensemble) "
            "or ckpt_path=<file.ckpt>",
        )
    if isinstance(chosen, str):
        return [chosen]
    return [str(item) for item in chosen]


# Split settings a checkpoint records (emotion.data.data_settings): enough to rebuild its
# split when the checkpoint travels without its run directory.
RECORDED_SPLIT_KEYS = (
    "path",
    "split_strategy",
    "val_fraction",
    "drop_overlap",
    "fold",
    "num_folds",
    "split_seed",
)


def data_settings(trained: TrainedModel | Ensemble, overrides: dict[str, Any]) -> dict[str, Any]:
    """The run's saved data settings (else the checkpoint's own record), with the non-null
    overrides on top; the normalisation from the checkpoint; no training noise."""
    saved = dict(trained.run_config.get("data") or {})
    if not saved:
        record = members_of(trained)[0].data_record
        saved = {key: record[key] for key in RECORDED_SPLIT_KEYS if key in record}
    settings = {key: value for key, value in saved.items() if key in DATAMODULE_ARGS}
    settings.update({key: value for key, value in overrides.items() if value is not None})
    if not settings.get("path"):
        raise EmotionError(
            f"no data store: {trained.description} has no run config beside it naming one",
            "pass data.path=<store.h5>",
        )
    settings["normalization"] = trained.normalization
    settings["aspect_correction"] = trained.aspect_correction
    settings["noise_std"] = 0.0
    return settings


def effective_settings(datamodule: LandmarkDataModule) -> dict[str, Any]:
    """Every data setting as the data module uses it, defaults included, for the report."""
    names = DATAMODULE_ARGS - {"synthetic"}
    return {name: getattr(datamodule, name) for name in sorted(names)} | {
        "path": str(datamodule.path)
    }


def evaluate(cfg: DictConfig) -> dict[str, Any]:
    """Score one split of a store with a checkpoint; write and return the report's numbers."""
    if cfg.split not in STAGES:
        raise EmotionError(f"split={cfg.split!r} is not known", f"choose one of {list(STAGES)}")
    trained = load_model(model_arguments(cfg))
    overrides = OmegaConf.to_container(cfg.data, resolve=True)
    settings = data_settings(trained, overrides)  # type: ignore[arg-type]
    datamodule = LandmarkDataModule(**settings)
    datamodule.setup()
    check_class_names(trained, datamodule.class_names, f"store {datamodule.path}")
    people = {str(person) for person in datamodule.subjects(cfg.split).tolist()}
    check_people_unseen(trained, cfg.split, people, str(datamodule.path))

    names = trained.class_names
    batch = int(settings.get("eval_batch_size") or 1024)
    rows = datamodule.rows(cfg.split)
    probabilities = trained.probabilities(rows.features, batch)
    subjects = datamodule.subjects(cfg.split)
    metrics = point_metrics(probabilities, rows.labels, names, cfg.split, cfg.calibration_bins)
    confusion = confusion_counts(probabilities, rows.labels, len(names))
    intervals = subject_bootstrap(
        probabilities,
        rows.labels,
        subjects,
        names,
        cfg.split,
        resamples=cfg.bootstrap.resamples,
        confidence=cfg.bootstrap.confidence,
        seed=cfg.bootstrap.seed,
        calibration_bins=cfg.calibration_bins,
    )
    summary = datamodule.summary
    result: dict[str, Any] = {
        "split": cfg.split,
        "ckpt_path": trained.description,
        "run_dir": str(trained.run_dir) if trained.run_dir else None,
        "ensemble": (
            [str(path) for path in trained.checkpoints] if isinstance(trained, Ensemble) else None
        ),
        "temperature": [member.temperature for member in members_of(trained)],
        "class_names": names,
        "normalization": trained.normalization,
        "aspect_correction": trained.aspect_correction,
        "metrics": metrics,
        "intervals": intervals,
        "bootstrap": {
            "unit": "subject",
            "resamples": cfg.bootstrap.resamples,
            "confidence": cfg.bootstrap.confidence,
            "seed": cfg.bootstrap.seed,
            "method": "percentile",
        },
        "confusion_matrix": {
            "rows": "true class",
            "columns": "predicted class",
            "counts": confusion.tolist(),
            "row_normalised": row_normalised(confusion).round(6).tolist(),
        },
        "counts": {
            "photos": len(rows),
            "subjects": int(len(set(subjects.tolist()))),
            "photos_per_class": summary["stages"][cfg.split]["rows_per_class"],
            "test_subjects_seen_in_training": summary["test_subjects_seen_in_training"],
            "test_rows_dropped_for_overlap": summary["test_rows_dropped_for_overlap"],
        },
        "data": summary,
        "data_settings": effective_settings(datamodule),
        "trained_on_synthetic": trained.trained_on_synthetic,
    }
    if cfg.threshold.target_recall is not None:
        val_rows = datamodule.rows("val")
        val = (trained.probabilities(val_rows.features, batch), val_rows.labels)
        result["operating_point"] = operating_point(
            val,
            (probabilities, rows.labels),
            names,
            cfg.threshold.positive_class,
            float(cfg.threshold.target_recall),
        )
    output_dir = Path(cfg.output_dir) if cfg.output_dir else default_output_dir(trained)
    result["output_dir"] = str(output_dir)
    write_outputs(result, output_dir, tensorboard=cfg.tensorboard)
    log.info("%s", (output_dir / REPORT_MD).read_text())
    log.info("wrote %s", output_dir)
    return result


def default_output_dir(trained: TrainedModel | Ensemble) -> Path:
    """<run_dir>/eval; an ensemble's goes to <sweep folder>/eval-ensemble."""
    name = "eval-ensemble" if isinstance(trained, Ensemble) else "eval"
    if trained.run_dir is not None:
        return trained.run_dir / name
    return trained.checkpoints[0].resolve().parent / name


@exit_on_user_error
def run(cfg: DictConfig) -> dict[str, Any]:
    return evaluate(cfg)


@hydra.main(version_base="1.3", config_path=CONFIG_DIR, config_name="eval")
def hydra_main(cfg: DictConfig) -> None:
    run(cfg)


def main() -> None:
    """`emotion-eval RUN_DIR ...` like emotion-predict and emotion-export; run_dir= works too."""
    sys.argv = [sys.argv[0], *positional_paths_as_override(sys.argv[1:], "run_dir")]
    hydra_main()


if __name__ == "__main__":
    main()
