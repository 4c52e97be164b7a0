"""Small stores: training without a validation split, the final epoch as the model, and a
warning when a validation split is too small to choose a checkpoint on."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import torch

from emotion.errors import EmotionError
from emotion.evaluate.evaluation import evaluate
from emotion.training.train import train
from tests.conftest import small_overrides
from tests.trained_run import eval_config


def _run(train_config, store: Path, run_dir: Path, *extra: str) -> dict:
    return train(train_config(small_overrides(store, run_dir, *extra)))


def test_no_validation_split_trains_every_person_and_tests_the_last_epoch(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    result = _run(
        train_config, tiny_store_path, run_dir, "data.val_fraction=0", "trainer.max_epochs=3"
    )
    assert result["select"] == "last" and result["best_checkpoint"] is None
    assert Path(result["tested_checkpoint"]) == run_dir / "checkpoints" / "last.ckpt"
    assert torch.load(result["tested_checkpoint"], weights_only=True)["epoch"] == 2
    assert result["val"] == {} and result["data"]["stages"]["val"]["rows"] == 0
    stages = result["data"]["stages"]
    assert stages["train"]["subjects"] == 24, "every non-test person trains"
    evaluated = evaluate(eval_config(f"run_dir={run_dir}", "bootstrap.resamples=20"))
    assert evaluated["ckpt_path"] == str(run_dir / "checkpoints" / "last.ckpt")
    assert evaluated["metrics"]["test/acc"] == pytest.approx(result["test"]["test/acc"], abs=1e-6)


def test_select_best_without_validation_people_is_refused(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    with pytest.raises(EmotionError, match="select=best chooses the checkpoint"):
        _run(train_config, tiny_store_path, tmp_path / "run", "data.val_fraction=0", "select=best")


def test_too_few_validation_people_are_not_carved_by_default(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    """The configs' min_val_subjects=10: the tiny store's 3-4 validation people train."""
    result = _run(train_config, tiny_store_path, tmp_path / "run", "data.min_val_subjects=10")
    assert result["select"] == "last"
    assert "fewer than data.min_val_subjects=10" in result["data"]["no_validation_split"]


def test_a_small_validation_split_warns_with_its_size(
    train_config, tiny_store_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="emotion.training.train"):
        result = _run(train_config, tiny_store_path, tmp_path / "run", "select=best")
    people = result["data"]["stages"]["val"]["subjects"]
    assert result["select"] == "best" and 0 < people < 10
    assert any(
        f"chosen on {people} validation people" in record.getMessage() for record in caplog.records
    )


def test_seed_reference_trains_every_person_for_200_epochs_and_keeps_the_last(train_config):
    cfg = train_config(["experiment=seed_reference"])
    assert cfg.trainer.max_epochs == 200 and cfg.select == "last"
    assert cfg.data.val_fraction == 0 and cfg.data.aspect_correction is False


def test_metrics_json_names_the_tested_checkpoint_for_evaluation(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    _run(train_config, tiny_store_path, run_dir, "select=last", "trainer.max_epochs=2")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["select"] == "last" and metrics["val"]  # validation still reported
    assert Path(metrics["tested_checkpoint"]).name == "last.ckpt"
    assert not list((run_dir / "checkpoints").glob("best-*.ckpt"))


def test_a_split_of_few_people_is_named_and_warned_about_in_training_and_eval(
    train_config, tiny_store_path: Path, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Ten folds of the tiny store test 3 people each: a test split of 1-4 people is an
    anecdote, and both metrics.json files and the report name who was held out."""
    run_dir = tmp_path / "run"
    with caplog.at_level(logging.WARNING):
        result = _run(
            train_config, tiny_store_path, run_dir, "data.split_strategy=kfold", "data.num_folds=10"
        )
    stages = result["data"]["stages"]
    test_people = stages["test"]["people"]
    assert 0 < len(test_people) < 5 and len(test_people) == stages["test"]["subjects"]
    assert set(stages["val"]["people"]).isdisjoint(test_people)
    saved = json.loads((run_dir / "metrics.json").read_text())
    assert saved["data"]["stages"]["test"]["people"] == test_people
    caveat = [text for text in saved["caveats"] if text.startswith("test holds only")]
    assert caveat and "fewer than 5" in caveat[0], saved["caveats"]
    assert any(caveat[0] in record.getMessage() for record in caplog.records)

    evaluated = evaluate(eval_config(f"run_dir={run_dir}", "bootstrap.resamples=20"))
    assert evaluated["counts"]["people"] == test_people
    assert evaluated["caveats"] == caveat
    report = (run_dir / "eval" / "report.md").read_text()
    assert all(f"`{person}`" in report for person in test_people)
    assert f"**caveat:** {caveat[0]}" in report


def test_a_split_of_five_or_more_people_has_no_caveat(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    result = _run(
        train_config,
        tiny_store_path,
        tmp_path / "run",
        "data.split_strategy=kfold",
        "data.num_folds=5",
    )
    assert result["data"]["stages"]["test"]["subjects"] >= 5
    assert not [text for text in result["caveats"] if text.startswith("test ")]
