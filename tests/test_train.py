"""End to end, in process: artifacts, checkpoints, resume, the overwrite guard, TensorBoard."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from emotion.errors import EmotionError
from emotion.models.classifier import LandmarkClassifier
from emotion.training.train import train
from tests.conftest import small_overrides


def _run(train_config, store: Path, run_dir: Path, *extra: str) -> dict:
    return train(train_config(small_overrides(store, run_dir, *extra)))


def _events(run_dir: Path) -> EventAccumulator:
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"images": 0})
    accumulator.Reload()
    return accumulator


@pytest.fixture
def trained(synthetic_run: tuple[Path, dict[str, Any]]) -> tuple[Path, dict[str, Any]]:
    """The shared tiny run of conftest.py (small_overrides, trained once): these tests only
    read it."""
    return synthetic_run


def test_a_run_leaves_checkpoints_events_and_metrics(trained) -> None:
    run_dir, result = trained
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert Path(result["best_checkpoint"]).is_file()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    for key in (
        "val/acc",
        "val/bal_acc",
        "val/f1_macro",
        "val/auroc",
        "val/recall_anxious",
        "val/precision_neutral",
    ):
        assert 0.0 <= metrics["val"][key] <= 1.0, key
    for key in ("test/acc", "test/bal_acc", "test/recall_anxious", "test/precision_neutral"):
        assert 0.0 <= metrics["test"][key] <= 1.0, key
    assert metrics["seed"] == 42 and metrics["n_params"] > 0
    assert metrics["config"]["model"]["width"] == 32
    assert metrics["synthetic_data"] is True
    matrix = metrics["test_confusion_matrix"]
    assert sum(map(sum, matrix)) == metrics["data"]["stages"]["test"]["rows"]


def test_checkpoint_loads_weights_only_and_rebuilds_the_model_alone(trained) -> None:
    run_dir, _ = trained
    checkpoint = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    model = LandmarkClassifier(**checkpoint["hyper_parameters"])
    model.load_state_dict(checkpoint["state_dict"])
    assert model.hparams.class_names == ["neutral", "anxious"]
    assert "val/bal_acc" in checkpoint["val_metrics"]
    restored = LandmarkClassifier.load_from_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    features = torch.randn(4, 1434)
    torch.testing.assert_close(model.eval()(features), restored.eval()(features))


def test_rerunning_resumes_in_the_same_directory(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    first = _run(train_config, tiny_store_path, run_dir)
    second = _run(train_config, tiny_store_path, run_dir, "trainer.max_epochs=2")
    assert first["epochs"] == 1 and second["epochs"] == 2
    assert second["global_step"] == 2 * first["global_step"]
    steps = [event.step for event in _events(run_dir).Scalars("train/loss_epoch")]
    assert steps == sorted(steps) and len(steps) == 2


def test_last_checkpoint_is_the_last_epoch_and_a_finished_rerun_trains_no_more(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    """The best epoch (here: the highest validation loss, so an early one) is not the last;
    last.ckpt must still hold the last epoch, or a rerun retrains from the best one."""
    run_dir = tmp_path / "run"
    overrides = ("trainer.max_epochs=4", "monitor=val/loss", "monitor_mode=max")
    first = _run(train_config, tiny_store_path, run_dir, *overrides)
    best = torch.load(first["best_checkpoint"], weights_only=True)
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert best["epoch"] < 3, "the best epoch should be an early one for this test to mean much"
    assert last["epoch"] == 3 and last["global_step"] == first["global_step"]
    again = _run(train_config, tiny_store_path, run_dir, *overrides)
    assert again["global_step"] == first["global_step"]
    assert again["test"] == first["test"]


def test_starting_over_needs_overwrite(train_config, tiny_store_path: Path, tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    _run(train_config, tiny_store_path, run_dir)
    with pytest.raises(EmotionError, match="overwrite=true"):
        _run(train_config, tiny_store_path, run_dir, "resume=never")
    (run_dir / "checkpoints" / "last.ckpt").unlink()
    resumed = _run(train_config, tiny_store_path, run_dir, "resume=auto")  # from best-*.ckpt
    assert resumed["epochs"] == 1
    for checkpoint in (run_dir / "checkpoints").glob("*.ckpt"):
        checkpoint.unlink()  # metrics.json alone: results to lose, nothing to resume from
    with pytest.raises(EmotionError, match="already holds an earlier run"):
        _run(train_config, tiny_store_path, run_dir, "resume=auto")
    fresh = _run(train_config, tiny_store_path, run_dir, "resume=never", "overwrite=true")
    assert fresh["global_step"] > 0 and fresh["epochs"] == 1


def test_resume_must_fails_without_a_checkpoint(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(EmotionError, match="resume=must"):
        _run(train_config, tiny_store_path, tmp_path / "run", "resume=must")


def test_resuming_a_different_model_is_refused(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    _run(train_config, tiny_store_path, run_dir)
    with pytest.raises(EmotionError, match="width: 32 -> 48"):
        _run(train_config, tiny_store_path, run_dir, "model.width=48")


def test_tensorboard_has_curves_hparams_and_a_confusion_matrix(trained) -> None:
    run_dir, result = trained
    events = _events(run_dir)
    scalars = set(events.Tags()["scalars"])
    for tag in (
        "train/loss_step",
        "train/loss_epoch",
        "train/acc",
        "train/lr",
        "val/loss",
        "val/bal_acc",
        "val/auroc",
        "val/recall_anxious",
        "val/precision_neutral",
        "test/acc",
        "hp/val_bal_acc",
        "hp/test_acc",
    ):
        assert tag in scalars, tag
    assert "val/confusion_matrix" in events.Tags()["images"]
    [description] = events.Tensors("data/text_summary")
    assert b"SYNTHETIC" in description.tensor_proto.string_val[0]
    assert "test/confusion_matrix" in events.Tags()["images"]
    [hp_value] = [e.value for e in events.Scalars("hp/test_acc")]
    assert hp_value == pytest.approx(result["test"]["test/acc"]) and hp_value != -1
    content = events.PluginTagToContent("hparams")
    start = next(
        plugin_data_pb2.HParamsPluginData.FromString(c).session_start_info
        for c in content.values()
        if plugin_data_pb2.HParamsPluginData.FromString(c).HasField("session_start_info")
    )
    assert {"depth", "width", "noise_std", "lr", "batch_size", "seed", "n_params"} <= set(
        start.hparams
    )
    assert start.hparams["n_params"].number_value == result["n_params"]


def test_fast_dev_run_preset_runs(train_config, tiny_store_path: Path, tmp_path: Path) -> None:
    result = _run(
        train_config, tiny_store_path, tmp_path / "run", "debug=fdr", "trainer.detect_anomaly=false"
    )
    assert result["best_checkpoint"] is None and result["global_step"] == 1


def test_overfit_preset_reuses_a_few_fixed_batches(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    result = _run(
        train_config,
        tiny_store_path,
        tmp_path / "run",
        "debug=overfit",
        "trainer.max_epochs=2",
        "trainer.detect_anomaly=false",
    )
    assert result["global_step"] == 2 * 3
    assert sum(map(sum, result["test_confusion_matrix"])) == 3 * 64


def test_profiler_preset_runs(train_config, tiny_store_path: Path, tmp_path: Path) -> None:
    result = _run(
        train_config,
        tiny_store_path,
        tmp_path / "run",
        "debug=profiler",
        "trainer.detect_anomaly=false",
    )
    assert result["epochs"] == 1


def test_runs_without_a_logger(train_config, tiny_store_path: Path, tmp_path: Path) -> None:
    result = _run(train_config, tiny_store_path, tmp_path / "run", "logger=none")
    assert result["epochs"] == 1 and not (tmp_path / "run" / "tensorboard").exists()


def test_checkpoints_record_their_data_whatever_the_callbacks(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    result = _run(train_config, tiny_store_path, tmp_path / "run", "callbacks=none")
    checkpoint = torch.load(result["best_checkpoint"], weights_only=True)
    # The data module's own state, as Lightning saves it (emotion.checkpoint.section).
    record = checkpoint["LandmarkDataModule"]
    settings = record["data_settings"]
    assert settings["normalization"] == record["landmark_preprocessing"]["normalization"]
    assert settings["subjects"]["test"] and settings["class_names"] == ["neutral", "anxious"]
