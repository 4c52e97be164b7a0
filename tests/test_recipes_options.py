"""Training options: off by default (seed_reference unchanged), and each works when switched on."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from emotion.models.classifier import LandmarkClassifier
from emotion.recipes.class_balance import balanced_weights
from emotion.recipes.temperature import fit_temperature
from emotion.training.train import train
from tests.conftest import small_overrides

OPTION_CALLBACKS = ("ema", "temperature", "class_balance", "init_trunk")


def test_seed_reference_is_untouched_by_the_new_options(train_config) -> None:
    cfg = train_config(["experiment=seed_reference"])
    data = cfg.data
    assert data.normalization == "nose_unit" and data.aspect_correction is False
    assert data.rotation_aug_deg == 0 and data.scale_aug_std == 0
    assert data.drop_empty_classes is False and data.noise_std == 0.002
    chosen = {name for name, callback in cfg.callbacks.items() if callback}
    assert not set(OPTION_CALLBACKS) & chosen
    assert cfg.trainer.max_epochs == 200 and cfg.init_from is None


def test_recommended_preset_composes(train_config) -> None:
    cfg = OmegaConf.to_container(train_config(["experiment=recommended"]), resolve=False)
    assert cfg["data"]["normalization"] == "procrustes" and cfg["data"]["aspect_correction"]
    chosen = {name for name, callback in cfg["callbacks"].items() if callback}
    assert chosen & set(OPTION_CALLBACKS) == {"temperature", "class_balance"}
    assert cfg["trainer"]["max_epochs"] == 200


def test_fit_temperature_recovers_the_temperature_that_made_the_labels() -> None:
    generator = torch.Generator().manual_seed(0)
    logits = torch.randn(20000, 2, generator=generator) * 4
    labels = torch.multinomial((logits / 2.0).softmax(dim=1), 1, generator=generator).squeeze(1)
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.05)


def test_balanced_weights_equalise_classes() -> None:
    weights = balanced_weights(torch.tensor([0, 0, 0, 1]), 3)
    assert weights.tolist() == pytest.approx([4 / 9, 4 / 3, 0.0])


def test_all_options_together_train_and_leave_a_loadable_checkpoint(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    overrides = small_overrides(
        tiny_store_path,
        run_dir,
        "trainer.max_epochs=2",
        "ema=on",
        "calibration=temperature",
        "class_balance=loss_weights",
        "data.rotation_aug_deg=5",
        "data.scale_aug_std=0.05",
        "data.normalization=procrustes",
        "data.aspect_correction=true",
    )
    result = train(train_config(overrides))
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["test"]["test/temperature"] > 0
    assert {"test/ece_raw", "test/ece_calibrated", "test/nll_calibrated"} <= set(metrics["test"])
    checkpoint = torch.load(result["best_checkpoint"], weights_only=True)
    assert checkpoint["temperature"] == pytest.approx(metrics["test"]["test/temperature"])
    assert checkpoint["LandmarkDataModule"]["data_settings"]["normalization"] == "procrustes"
    LandmarkClassifier.load_from_checkpoint(result["best_checkpoint"])  # strict: no extra keys


def test_fit_temperature_stays_bounded_when_validation_is_all_wrong() -> None:
    """A tiny validation set the model gets entirely wrong pushes T to infinity: bounded."""
    logits = torch.tensor([[-3.0, 3.0], [3.0, -3.0]] * 3)
    labels = torch.tensor([0, 1] * 3)
    assert fit_temperature(logits, labels) == pytest.approx(20.0)
