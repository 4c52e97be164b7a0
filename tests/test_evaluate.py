"""emotion-eval: exact agreement with training, subject bootstrap, overlap, operating point,
and clear errors for bad checkpoints and stores."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from torchmetrics.functional.classification import multiclass_accuracy, multiclass_f1_score

from emotion.errors import EmotionError
from emotion.evaluate.bootstrap import subject_bootstrap
from emotion.evaluate.evaluation import evaluate
from emotion.evaluate.scores import metrics_from_confusion
from emotion.evaluate.threshold import at_threshold, choose_threshold
from emotion.store.io import write_store
from emotion.store.schema import LandmarkStore
from tests.commands import emotion
from tests.trained_run import eval_config, train_tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_store_path: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("eval") / "run"
    return run_dir, train_tiny(tiny_store_path, run_dir)


def _evaluate(*overrides: str) -> dict[str, Any]:
    return evaluate(eval_config("bootstrap.resamples=200", *overrides))


def test_the_command_reproduces_the_training_test_metrics_exactly(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """emotion-eval's own main, in this process (its exit status as a subprocess is checked by
    the deleted-store test below): the model positionally, a setting after it."""
    from emotion.evaluate.app import main

    run_dir, trained = run
    monkeypatch.chdir(tmp_path)
    main([str(run_dir), "bootstrap.resamples=100"])
    result = json.loads((run_dir / "eval" / "metrics.json").read_text())
    for key in (
        "test/acc",
        "test/bal_acc",
        "test/f1_macro",
        "test/auroc",
        "test/recall_anxious",
        "test/precision_neutral",
    ):
        assert result["metrics"][key] == trained["test"][key], key
    assert result["confusion_matrix"]["counts"] == trained["test_confusion_matrix"]
    for name in ("report.md", "confusion_matrix.png", "confusion_matrix_normalised.png"):
        assert (run_dir / "eval" / name).stat().st_size > 0, name
    assert list((run_dir / "eval" / "tensorboard").glob("events.out.tfevents.*"))
    assert not list(tmp_path.iterdir()), "emotion-eval left files in the working directory"


def test_report_has_every_metric_and_intervals_contain_the_point_estimate(run) -> None:
    run_dir, _ = run
    result = _evaluate(f"run_dir={run_dir}", f"output_dir={run_dir}/eval_a")
    metrics = result["metrics"]
    for key in (
        "acc",
        "bal_acc",
        "f1_macro",
        "auroc",
        "ece",
        "recall_anxious",
        "precision_neutral",
        "f1_anxious",
        "f1_neutral",
    ):
        assert 0.0 <= metrics[f"test/{key}"] <= 1.0, key
    for key in ("acc", "bal_acc", "f1_macro", "auroc", "recall_anxious"):
        interval = result["intervals"][f"test/{key}"]
        assert interval["low"] <= metrics[f"test/{key}"] <= interval["high"], key
    counts = result["counts"]
    assert counts["photos"] == sum(map(sum, result["confusion_matrix"]["counts"]))
    assert counts["subjects"] == result["data"]["stages"]["test"]["subjects"]
    rows = np.asarray(result["confusion_matrix"]["row_normalised"])
    np.testing.assert_allclose(rows.sum(axis=1), 1.0)
    report = (run_dir / "eval_a" / "report.md").read_text()
    assert "anxious" in report and "subjects" in report


def test_operating_point_is_chosen_on_validation(run) -> None:
    run_dir, _ = run
    result = _evaluate(
        f"run_dir={run_dir}", f"output_dir={run_dir}/eval_t", "threshold.target_recall=0.8"
    )
    point = result["operating_point"]
    assert point["chosen_on"] == "val"
    assert point["val"]["recall"] >= 0.8
    assert "recall" in point["evaluated"]


def test_drop_overlap_removes_exactly_the_shared_subjects(
    run, tiny_synthetic: LandmarkStore, tmp_path: Path
) -> None:
    run_dir, _ = run
    test_people = sorted(set(tiny_synthetic.subject[tiny_synthetic.split == "test"].tolist()))
    train_people = sorted(set(tiny_synthetic.subject[tiny_synthetic.split == "train"].tolist()))
    # Two test people also get photos in training: their first training photos are relabelled.
    shared = test_people[:2]
    subject = tiny_synthetic.subject.copy()
    for person, donor in zip(shared, train_people[:2], strict=True):
        subject[np.flatnonzero(subject == donor)[:3]] = person
    path = tmp_path / "overlap.h5"
    write_store(path, dataclasses.replace(tiny_synthetic, subject=subject))
    shared_test_rows = int(np.isin(subject[tiny_synthetic.split == "test"], shared).sum())

    result = _evaluate(f"run_dir={run_dir}", f"data.path={path}", f"output_dir={tmp_path}/e")
    counts = result["counts"]
    assert counts["test_subjects_seen_in_training"] == 2
    assert counts["test_rows_dropped_for_overlap"] == shared_test_rows
    assert counts["subjects"] == len(test_people) - 2
    assert counts["photos"] == int((tiny_synthetic.split == "test").sum()) - shared_test_rows


def test_bootstrap_resamples_subjects_and_agrees_with_torchmetrics() -> None:
    rng = np.random.default_rng(0)
    labels = torch.from_numpy(rng.integers(0, 2, 300))
    probabilities = torch.from_numpy(rng.random((300, 2))).float().softmax(dim=1)
    confusion = np.zeros((2, 2), dtype=np.int64)
    np.add.at(confusion, (labels.numpy(), probabilities.argmax(1).numpy()), 1)
    counted = metrics_from_confusion(confusion, ["neutral", "anxious"])
    assert counted["acc"] == pytest.approx(
        float(multiclass_accuracy(probabilities, labels, 2, average="micro"))
    )
    assert counted["bal_acc"] == pytest.approx(
        float(multiclass_accuracy(probabilities, labels, 2, average="macro"))
    )
    assert counted["f1_macro"] == pytest.approx(
        float(multiclass_f1_score(probabilities, labels, 2, average="macro"))
    )
    # One subject per row vs. 3 subjects for all rows: the latter has far wider intervals.
    many = subject_bootstrap(
        probabilities,
        labels,
        np.arange(300).astype(str),
        ["neutral", "anxious"],
        "test",
        resamples=200,
    )
    few = subject_bootstrap(
        probabilities,
        labels,
        (np.arange(300) % 3).astype(str),
        ["neutral", "anxious"],
        "test",
        resamples=200,
    )
    width = {k: v["high"] - v["low"] for k, v in many.items()}
    assert set(many) >= {"test/acc", "test/auroc", "test/ece", "test/recall_anxious"}
    assert width["test/acc"] > 0
    assert few["test/acc"]["high"] - few["test/acc"]["low"] <= width["test/acc"] * 3


def test_threshold_reaches_the_target_recall() -> None:
    scores = torch.tensor([0.1, 0.4, 0.35, 0.8, 0.9, 0.2, 0.6, 0.3])
    labels = torch.tensor([0, 0, 1, 1, 1, 0, 1, 1])
    probabilities = torch.stack([1 - scores, scores], dim=1)
    threshold = choose_threshold(probabilities, labels, 1, 0.8)
    figures = at_threshold(probabilities, labels, 1, threshold)
    assert figures["recall"] >= 0.8
    assert figures["confusion"]["tp"] + figures["confusion"]["fn"] == 5


def test_missing_and_corrupt_checkpoints_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(EmotionError, match="does not exist"):
        _evaluate(f"ckpt_path={tmp_path}/nope.ckpt")
    corrupt = tmp_path / "corrupt.ckpt"
    corrupt.write_bytes(b"not a checkpoint at all")
    with pytest.raises(EmotionError, match="not a readable PyTorch checkpoint"):
        _evaluate(f"ckpt_path={corrupt}")
    foreign = tmp_path / "foreign.ckpt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    with pytest.raises(EmotionError, match="not a Lightning checkpoint"):
        _evaluate(f"ckpt_path={foreign}")
    with pytest.raises(EmotionError, match="holds no best checkpoint"):
        _evaluate(f"run_dir={tmp_path}")


def test_checkpoint_of_another_schema_or_class_set_is_refused(
    run, tiny_synthetic: LandmarkStore, tmp_path: Path
) -> None:
    run_dir, trained = run
    checkpoint = torch.load(trained["best_checkpoint"], weights_only=True)
    record = checkpoint["LandmarkDataModule"]["landmark_preprocessing"]
    assert record["normalization"] == "nose_unit"
    record["store_schema_version"] = 3
    other = tmp_path / "v3.ckpt"
    torch.save(checkpoint, other)
    with pytest.raises(EmotionError, match="schema v3"):
        _evaluate(f"ckpt_path={other}", f"data.path={run_dir}/none.h5")

    swapped = tmp_path / "swapped.h5"
    write_store(swapped, dataclasses.replace(tiny_synthetic, class_names=["anxious", "neutral"]))
    with pytest.raises(EmotionError, match="trained on \\['neutral', 'anxious'\\]"):
        _evaluate(f"run_dir={run_dir}", f"data.path={swapped}")


def test_a_store_without_a_test_split_is_a_clear_error(
    run, tiny_synthetic: LandmarkStore, tmp_path: Path
) -> None:
    run_dir, _ = run
    path = tmp_path / "train_only.h5"
    split = np.full(len(tiny_synthetic), "train", dtype=object)
    write_store(path, dataclasses.replace(tiny_synthetic, split=split))
    with pytest.raises(EmotionError, match="no rows with split=='test'"):
        _evaluate(f"run_dir={run_dir}", f"data.path={path}")


def test_eval_on_a_run_whose_store_was_deleted_refuses_and_writes_nothing(
    tmp_path: Path, train_config
) -> None:
    """Only training makes data: evaluation never regenerates the SYNTHETIC default store."""
    from emotion.training.train import train

    data_dir, run_dir = tmp_path / "data", tmp_path / "run"
    cfg = train_config(
        [
            "data=synthetic",
            f"paths.data_dir={data_dir}",
            f"paths.run_dir={run_dir}",
            f"paths.root_dir={tmp_path}",
            "data.synthetic.num_subjects=12",
            "model.width=16",
            "model.depth=1",
            "model.head_width=8",
            "trainer.max_epochs=1",
            "trainer.log_every_n_steps=1",
            "trainer.accelerator=cpu",
            "progress_bar=none",
        ]
    )
    train(cfg)  # training generates the default store it names
    (store,) = data_dir.glob("*.h5")
    store.unlink()
    done = emotion("emotion.evaluate.app", str(run_dir), cwd=tmp_path, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error:" in done.stderr and "fix:" in done.stderr and "Traceback" not in done.stderr
    assert "SYNTHETIC" not in done.stderr.split("error:")[0]  # nothing was generated
    assert not store.exists() and not list(data_dir.iterdir())
    assert not (run_dir / "eval").exists()


def test_the_model_is_the_first_argument_and_bad_settings_are_named() -> None:
    from emotion.evaluate.settings import compose_eval_config

    cfg = compose_eval_config("outputs/train/runs/a=1,b=2", ["split=val"])
    assert cfg.run_dir == "outputs/train/runs/a=1,b=2" and cfg.split == "val"  # taken as it is
    with pytest.raises(EmotionError, match="first argument"):
        compose_eval_config("run", ["ckpt_path=other.ckpt"])
    with pytest.raises(EmotionError, match="nope") as refused:
        compose_eval_config("run", ["nope=1"])
    assert "--print-config" in str(refused.value)
    for override, named in [
        ("split=validation", "split=validation"),
        ("bootstrap.resamples=abc", "bootstrap.resamples=abc"),
        ("bootstrap.resamples=0", "bootstrap.resamples 0 is out of range"),
        ("bootstrap.confidence=2", "bootstrap.confidence 2.0 is out of range"),
        ("threshold.target_recall=1.5", "threshold.target_recall 1.5 is out of range"),
        ("data.split_strategy=random", "data.split_strategy=random"),
    ]:
        with pytest.raises(EmotionError, match=re.escape(named)):
            compose_eval_config("run", [override])


def test_a_split_without_rows_is_refused_naming_why(tiny_store_path: Path, tmp_path: Path) -> None:
    """A run trained without a validation split has no validation report."""
    run_dir = tmp_path / "run"
    train_tiny(tiny_store_path, run_dir, "data.val_fraction=0", "select=last")
    with pytest.raises(EmotionError, match="split=val holds no rows"):
        evaluate(eval_config(f"run_dir={run_dir}", "split=val"))
    assert not list(run_dir.glob("eval*"))


def test_report_and_tensorboard_carry_a_reliability_diagram_and_an_roc_curve(run) -> None:
    """The two plots beside the confusion matrix: their PNGs, linked from the report, in
    TensorBoard's images; the diagram's bins are the ECE's own (their weighted gap is it)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from emotion.evaluate.curves import gap

    run_dir, _ = run
    output = run_dir / "eval_plots"
    result = _evaluate(f"run_dir={run_dir}", f"output_dir={output}")
    bins = result["reliability"]["bins"]
    assert sum(row["photos"] for row in bins) == result["counts"]["photos"]
    assert len(bins) in (15, 16) and all(row["low"] < row["high"] for row in bins[:15])
    assert gap(bins) == pytest.approx(result["metrics"]["test/ece"], abs=1e-5)
    assert result["roc"]["positive_class"] == "anxious"
    report = (output / "report.md").read_text()
    for name in ("reliability_diagram.png", "roc_curve.png", "confusion_matrix.png"):
        assert (output / name).read_bytes().startswith(b"\x89PNG"), name
        assert f"]({name})" in report, name
    assert "| top probability | photos | mean confidence | accuracy |" in report
    events = EventAccumulator(str(output / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {"eval/reliability_diagram", "eval/roc_curve"} <= set(events.Tags()["images"])


def test_reliability_bins_match_torchmetrics_ece_on_scores_of_exactly_one() -> None:
    """Scores on a bin edge and of exactly 1.0 land where torchmetrics puts them."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    from emotion.evaluate.curves import gap, reliability_bins

    generator = torch.Generator().manual_seed(0)
    anxious = torch.cat([torch.rand(200, generator=generator), torch.tensor([1.0, 1.0, 0.6])])
    probabilities = torch.stack([1 - anxious, anxious], dim=1)
    labels = (torch.rand(len(anxious), generator=generator) < anxious).long()
    bins = reliability_bins(probabilities, labels, 10)
    assert bins[-1]["low"] == bins[-1]["high"] == 1.0 and bins[-1]["photos"] == 2
    ece = multiclass_calibration_error(probabilities, labels, 2, n_bins=10, norm="l1")
    assert gap(bins) == pytest.approx(float(ece), abs=1e-6)
