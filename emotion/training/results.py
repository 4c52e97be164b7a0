"""What a finished run reports: metrics.json's content, and one HPARAMS entry per run with
the same flat keys in every logger, so TensorBoard, CSV and MLflow compare runs alike."""

from __future__ import annotations

import sys
from typing import Any

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger
from omegaconf import DictConfig, OmegaConf

from emotion.checkpoint import read_checkpoint, val_metrics
from emotion.data.datamodule import LandmarkDataModule
from emotion.models.classifier import LandmarkClassifier

# The same flat keys in every run's HPARAMS entry, so TensorBoard can compare runs.
HPARAM_KEYS = {
    "architecture": "model.architecture",
    "depth": "model.depth",
    "width": "model.width",
    "head_width": "model.head_width",
    "dropout": "model.dropout",
    "lr": "model.lr",
    "weight_decay": "model.weight_decay",
    "label_smoothing": "model.label_smoothing",
    "noise_std": "data.noise_std",
    "batch_size": "data.batch_size",
    "normalization": "data.normalization",
    "aspect_correction": "data.aspect_correction",
    "features": "data.features",
    "split_strategy": "data.split_strategy",
    "fold": "data.fold",
    "max_epochs": "trainer.max_epochs",
    "seed": "seed",
}


def flat_hparams(cfg: DictConfig, n_params: int) -> dict[str, Any]:
    values = {key: OmegaConf.select(cfg, path) for key, path in HPARAM_KEYS.items()}
    values["n_params"] = n_params
    return values


def run_result(
    cfg: DictConfig,
    trainer: L.Trainer,
    model: LandmarkClassifier,
    datamodule: LandmarkDataModule,
    tested: str,
    test: dict[str, float],
    selection: str,
) -> dict[str, Any]:
    """What metrics.json holds: the tested checkpoint's val and test metrics, and the run."""
    n_params = model.num_parameters
    val = (
        val_metrics(read_checkpoint(tested))
        if tested
        else _scalars(trainer.callback_metrics, "val/")
    )
    return {
        "status": "finished",
        "run_dir": str(cfg.paths.run_dir),
        "synthetic_data": datamodule.is_synthetic,
        "seed": cfg.seed,
        "n_params": n_params,
        "model_size_mb": round(n_params * 4 / 1e6, 3),  # float32 weights, MB = 10^6 bytes
        # The checkpoint tested (and used by eval, predict and export); best_checkpoint only
        # when it was chosen on validation.
        "tested_checkpoint": tested or None,
        "best_checkpoint": (tested or None) if selection == "best" else None,
        "select": selection,
        "monitor": cfg.monitor,
        "epochs": trainer.current_epoch,
        "global_step": trainer.global_step,
        "val": val,
        "test": {key: value for key, value in test.items() if key.startswith("test/")},
        "test_confusion_matrix": model.confusion_matrices["test"].tolist(),
        "class_names": datamodule.class_names,
        "data": datamodule.summary,
        "caveats": datamodule.summary["caveats"],
        "command": " ".join(sys.argv),
        "config": OmegaConf.to_container(cfg, resolve=True, enum_to_str=True),
    }


HPARAM_METRICS = ("bal_acc", "acc", "f1_macro", "auroc", "loss")


def hparam_metrics(val: dict[str, float], test: dict[str, float], monitor: str) -> dict[str, float]:
    """`hp/val_bal_acc` ... then `hp/test_...`: runs are chosen on validation, so its metrics
    are HPARAMS' first columns (TensorBoard keeps this order), the monitored one first."""
    ordered: dict[str, float] = {}
    for stage in (val, test):
        keys = sorted(
            (key for key in stage if key.split("/")[-1] in HPARAM_METRICS),
            key=lambda key: (key != monitor, HPARAM_METRICS.index(key.split("/")[-1])),
        )
        ordered.update({f"hp/{key.replace('/', '_')}": stage[key] for key in keys})
    return ordered


def log_final_hparams(trainer: L.Trainer, cfg: DictConfig, result: dict[str, Any]) -> None:
    """One HPARAMS entry per run, the same flat keys everywhere, with the final metrics."""
    hp_metrics = hparam_metrics(result["val"], result["test"], cfg.monitor)
    hparams = flat_hparams(cfg, result["n_params"])
    for logger in trainer.loggers:
        if isinstance(logger, TensorBoardLogger):  # HPARAMS: the values and their metrics
            logger.log_hyperparams(hparams, metrics=hp_metrics)
        else:
            logger.log_hyperparams(hparams)
            logger.log_metrics(hp_metrics, step=trainer.global_step)
        # The test stage already closed the writer; flush and close the one reopened above.
        logger.finalize("success")


def _scalars(metrics: dict[str, Any], prefix: str) -> dict[str, float]:
    return {key: float(value) for key, value in metrics.items() if key.startswith(prefix)}
