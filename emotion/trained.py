"""A trained model as evaluation, prediction and export meet it: from a checkpoint alone.

The model and its class names come from the checkpoint, never from today's config defaults.
How raw landmarks become features (normalisation, aspect correction) comes from the
checkpoint too (`landmark_preprocessing`, written since the evaluation branch), or, for older
checkpoints, from the run's saved config. So does a temperature fitted by
`calibration=temperature`, which every probability then uses.
"""

from __future__ import annotations

import json
import logging
import pickle
import sys
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from emotion.data.data_settings import CHECKPOINT_KEY as DATA_SETTINGS_KEY
from emotion.data.geometry import NORMALISATIONS, normalise
from emotion.data.schema import NUM_COORDS, NUM_LANDMARKS, SCHEMA_VERSION
from emotion.errors import EmotionError
from emotion.models.classifier import PREPROCESSING_KEY, LandmarkClassifier
from emotion.recipes.temperature import CHECKPOINT_KEY as TEMPERATURE_KEY
from emotion.runs import CHECKPOINT_DIR, METRICS_FILE

log = logging.getLogger(__name__)

HYDRA_CONFIG = Path(".hydra") / "config.yaml"


@dataclass
class TrainedModel:
    """A classifier in eval mode plus everything needed to feed it raw landmarks."""

    model: LandmarkClassifier
    class_names: list[str]
    normalization: str
    aspect_correction: bool
    ckpt_path: Path
    run_dir: Path | None
    run_config: dict[str, Any] = field(default_factory=dict)
    # Softmax temperature fitted on validation (calibration=temperature); 1.0 when none was.
    temperature: float = 1.0
    # The checkpoint's data record (split, people per stage); empty for older checkpoints.
    data_record: dict[str, Any] = field(default_factory=dict)

    @property
    def trained_on_synthetic(self) -> bool:
        """Whether the training data was SYNTHETIC: the checkpoint's record, else the run's
        metrics.json, else the store its config names says so."""
        if "synthetic" in self.data_record:
            return bool(self.data_record["synthetic"])
        if self.run_dir is not None and (self.run_dir / METRICS_FILE).is_file():
            metrics = json.loads((self.run_dir / METRICS_FILE).read_text())
            if "synthetic_data" in metrics:
                return bool(metrics["synthetic_data"])
        return bool((self.run_config.get("data") or {}).get("synthetic"))

    @property
    def description(self) -> str:
        return str(self.ckpt_path)

    @property
    def checkpoints(self) -> list[Path]:
        return [self.ckpt_path]

    def features(self, landmarks: np.ndarray, image_size: np.ndarray | None) -> torch.Tensor:
        """Raw (N, 478, 3) landmarks to the (N, 1434) features the model was trained on."""
        points = normalise(
            landmarks, image_size, method=self.normalization, aspect=self.aspect_correction
        )
        return torch.from_numpy(np.ascontiguousarray(points.reshape(len(points), -1)))

    @torch.inference_mode()
    def probabilities(self, features: torch.Tensor, batch_size: int = 1024) -> torch.Tensor:
        """Softmax outputs in batches, as `trainer.test` computes them, of the logits divided
        by the fitted temperature (which changes no decision, only the confidence)."""
        if len(features) == 0:
            return torch.empty(0, len(self.class_names))
        parts = [
            (self.model(features[start : start + batch_size]) / self.temperature).softmax(dim=1)
            for start in range(0, len(features), batch_size)
        ]
        return torch.cat(parts)


def resolve_checkpoint(ckpt_path: str | None, run_dir: str | None) -> Path:
    """`ckpt_path`, or a run directory's best checkpoint (metrics.json, else checkpoints/)."""
    if ckpt_path:
        path = Path(ckpt_path)
        if not path.is_file():
            raise EmotionError(
                f"checkpoint {path} does not exist",
                "pass ckpt_path=<file.ckpt> or run_dir=outputs/train/runs/<run_name>",
            )
        return path
    if not run_dir:
        raise EmotionError(
            "no model given", "pass run_dir=outputs/train/runs/<run_name> or ckpt_path=<file.ckpt>"
        )
    folder = Path(run_dir)
    if not folder.is_dir():
        raise EmotionError(f"run directory {folder} does not exist", "check the path")
    metrics = folder / METRICS_FILE
    if metrics.is_file():
        # Only the file name: a copied or moved run directory must score its own checkpoint,
        # not the one at the absolute path its metrics.json still names.
        best = json.loads(metrics.read_text()).get("best_checkpoint")
        if best and (folder / CHECKPOINT_DIR / Path(best).name).is_file():
            return folder / CHECKPOINT_DIR / Path(best).name
    best_files = sorted((folder / CHECKPOINT_DIR).glob("best-*.ckpt"))
    if best_files:
        return best_files[-1]
    raise EmotionError(
        f"{folder} holds no best checkpoint ({CHECKPOINT_DIR}/best-*.ckpt)",
        "finish training that run first, or pass ckpt_path=<file.ckpt>",
    )


def run_dir_of(ckpt_path: Path) -> Path | None:
    """The run directory a checkpoint belongs to: <run_dir>/checkpoints/<file>.ckpt."""
    folder = ckpt_path.resolve().parent.parent
    if (folder / METRICS_FILE).is_file() or (folder / HYDRA_CONFIG).is_file():
        return folder
    return None


def saved_run_config(run_dir: Path | None) -> dict[str, Any]:
    """The run's fully resolved config: metrics.json `config`, else .hydra/config.yaml."""
    if run_dir is None:
        return {}
    metrics = run_dir / METRICS_FILE
    if metrics.is_file():
        config = json.loads(metrics.read_text()).get("config")
        if config:
            return dict(config)
    hydra_config = run_dir / HYDRA_CONFIG
    if hydra_config.is_file():
        from omegaconf import OmegaConf

        loaded = OmegaConf.load(hydra_config)
        try:
            return dict(OmegaConf.to_container(loaded, resolve=True))  # type: ignore[arg-type]
        except Exception:  # interpolations of Hydra's runtime cannot resolve outside a run
            return dict(OmegaConf.to_container(loaded, resolve=False))  # type: ignore[arg-type]
    return {}


def read_checkpoint(path: Path) -> dict[str, Any]:
    """torch.load with weights_only=True; a corrupt or foreign file is a user error."""
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, EOFError, pickle.UnpicklingError, zipfile.BadZipFile, OSError) as error:
        raise EmotionError(
            f"{path} is not a readable PyTorch checkpoint ({type(error).__name__}: "
            f"{str(error).splitlines()[0][:200] if str(error) else 'no detail'})",
            "pass a .ckpt written by emotion-train (checkpoints/best-*.ckpt or last.ckpt)",
        ) from None
    if not isinstance(checkpoint, dict) or not {"state_dict", "hyper_parameters"} <= set(
        checkpoint
    ):
        raise EmotionError(
            f"{path} is not a Lightning checkpoint of emotion-train (no state_dict and "
            "hyper_parameters)",
            "pass a .ckpt written by emotion-train",
        )
    return checkpoint


def _preprocessing(
    checkpoint: dict[str, Any], run_config: dict[str, Any], path: Path
) -> tuple[str, bool]:
    stored = checkpoint.get(PREPROCESSING_KEY)
    if stored is None:
        data = run_config.get("data") or {}
        if "normalization" not in data:
            raise EmotionError(
                f"{path} does not say how its landmarks were normalised, and no run config "
                "(metrics.json or .hydra/config.yaml) was found beside it",
                "keep the checkpoint inside its run directory (<run_dir>/checkpoints/), or "
                "retrain with this version of emotion-train",
            )
        stored = {
            "store_schema_version": SCHEMA_VERSION,
            "normalization": data["normalization"],
            "aspect_correction": bool(data.get("aspect_correction", False)),
        }
    version = stored.get("store_schema_version")
    if version != SCHEMA_VERSION:
        raise EmotionError(
            f"{path} was trained on landmark store schema v{version}; this version reads "
            f"v{SCHEMA_VERSION}",
            "retrain the model with this version of emotion-train",
        )
    if stored["normalization"] not in NORMALISATIONS:
        raise EmotionError(f"{path} uses an unknown normalisation {stored['normalization']!r}")
    return str(stored["normalization"]), bool(stored["aspect_correction"])


def load_trained(ckpt_path: Path) -> TrainedModel:
    """Rebuild the classifier from a checkpoint alone, in eval mode on the CPU."""
    checkpoint = read_checkpoint(ckpt_path)
    hparams = dict(checkpoint["hyper_parameters"])
    if hparams.get("input_dim") != NUM_LANDMARKS * NUM_COORDS:
        raise EmotionError(
            f"{ckpt_path} expects {hparams.get('input_dim')} features, not the "
            f"{NUM_LANDMARKS} x {NUM_COORDS} landmarks of store schema v{SCHEMA_VERSION}",
            "use a checkpoint trained on a schema-v1 store",
        )
    check_finite_weights(checkpoint["state_dict"], ckpt_path)
    run_dir = run_dir_of(ckpt_path)
    run_config = saved_run_config(run_dir)
    normalization, aspect_correction = _preprocessing(checkpoint, run_config, ckpt_path)
    try:
        model = LandmarkClassifier(**hparams)
        model.load_state_dict(checkpoint["state_dict"])
    except (TypeError, RuntimeError) as error:
        raise EmotionError(
            f"{ckpt_path} does not fit this version's LandmarkClassifier: "
            f"{str(error).splitlines()[0][:300]}",
            "use a checkpoint written by this version of emotion-train",
        ) from None
    model.eval()
    return TrainedModel(
        model=model,
        class_names=list(hparams["class_names"]),
        normalization=normalization,
        aspect_correction=aspect_correction,
        ckpt_path=ckpt_path,
        run_dir=run_dir,
        run_config=run_config,
        temperature=float(checkpoint.get(TEMPERATURE_KEY) or 1.0),
        data_record=dict(checkpoint.get(DATA_SETTINGS_KEY) or {}),
    )


def check_finite_weights(state_dict: dict[str, Any], path: Path) -> None:
    """Refuse a checkpoint holding NaN or inf: every probability it gives would be NaN."""
    broken = [
        name
        for name, value in state_dict.items()
        if isinstance(value, torch.Tensor)
        and value.is_floating_point()
        and not bool(torch.isfinite(value).all())
    ]
    if broken:
        raise EmotionError(
            f"{path} holds NaN or infinite weights ({len(broken)} tensors, e.g. {broken[0]})",
            "use an earlier checkpoint of that run; the training that wrote this one diverged",
        )


def warn_synthetic(description: str) -> None:
    """Say on stderr, once per command, that a model never saw a real face."""
    print(
        f"warning: {description} was trained on SYNTHETIC landmarks (generated, not real "
        "faces); its probabilities on real photos say little. Train on extracted photos "
        "(emotion-train data=store data.path=...) before using it on people.",
        file=sys.stderr,
    )


def check_photo_ready(trained: Any) -> None:
    """Refuse models whose features need more than the photo itself."""
    if trained.normalization == "subject_neutral":
        raise EmotionError(
            f"{trained.description} was trained with data.normalization=subject_neutral, "
            "which needs each person's neutral photos from the training data; a photo alone "
            "cannot be normalised that way",
            "predict and export with a model trained on nose_unit or procrustes features",
        )


def check_class_names(trained: Any, data_class_names: list[str], where: str) -> None:
    """Refuse data labelled with another class set: indices would mean other emotions."""
    if list(data_class_names) != trained.class_names:
        raise EmotionError(
            f"{where} has classes {list(data_class_names)}, but the model "
            f"{trained.description} was trained on {trained.class_names}",
            "evaluate on a store extracted with the same class set (emotion-extract classes=...)",
        )
