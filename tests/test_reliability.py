"""Bad input and interrupted work: what a reliability review found, each case as it was met."""

from __future__ import annotations

import fcntl
import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from emotion.data.datamodule import LandmarkDataModule
from emotion.errors import EmotionError
from emotion.evaluate.evaluation import evaluate
from emotion.inference.trained import load_trained
from emotion.rundir import LOCK_FILE
from emotion.store.io import read_store
from emotion.store.schema import StoreError
from tests.trained_run import eval_config, train_tiny


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, tiny_store_path: Path) -> tuple[Path, dict]:
    run_dir = tmp_path_factory.mktemp("reliability") / "run"
    return run_dir, train_tiny(tiny_store_path, run_dir)


def test_a_second_run_in_the_same_directory_is_refused(tiny_store_path: Path, tmp_path: Path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    with open(run_dir / LOCK_FILE, "a+") as held:  # what a live emotion-train holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(EmotionError, match="in use by another emotion-train"):
            train_tiny(tiny_store_path, run_dir)
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()
    assert train_tiny(tiny_store_path, run_dir)["epochs"] == 1, "a released lock blocks nothing"


def test_a_run_killed_before_its_first_checkpoint_simply_starts_again(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    events = run_dir / "tensorboard"
    events.mkdir(parents=True)
    (events / "events.out.tfevents.1.killed").write_bytes(b"first steps of a killed run")
    result = train_tiny(tiny_store_path, run_dir)
    assert result["epochs"] == 1
    assert not (events / "events.out.tfevents.1.killed").exists(), "no duplicated curves"


def _with_a_nan_weight(source: Path, target: Path) -> Path:
    checkpoint = torch.load(source, weights_only=True)
    name = next(key for key in checkpoint["state_dict"] if key.endswith("weight"))
    checkpoint["state_dict"][name][0, 0] = float("nan")
    torch.save(checkpoint, target)
    return target


def test_a_checkpoint_with_nan_weights_is_refused(run, tmp_path: Path) -> None:
    _, trained = run
    broken = _with_a_nan_weight(Path(trained["best_checkpoint"]), tmp_path / "nan.ckpt")
    with pytest.raises(EmotionError, match="NaN or infinite weights"):
        load_trained(broken)


def test_export_refuses_a_graph_with_non_finite_outputs(
    run, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """NaN > tolerance is false: a NaN-producing graph passed the onnxruntime check."""
    pytest.importorskip("onnxruntime", reason="needs the export extra")
    import emotion.export.onnx as export_module

    run_dir, _ = run
    real_deployable = export_module.deployable

    def with_a_nan_weight(trained):
        module = real_deployable(trained)
        with torch.no_grad():
            next(module.networks.parameters())[0, 0] = float("nan")
        return module

    monkeypatch.setattr(export_module, "deployable", with_a_nan_weight)
    output = tmp_path / "nan.onnx"
    with pytest.raises(EmotionError, match="differs from torch"):
        export_module.export(run_dir, output)
    assert not output.exists()


def test_predict_never_labels_nan_probabilities() -> None:
    from emotion.features.preprocessing import Preprocessing
    from emotion.predict.predictor import Predictor

    class Model:
        class_names = ["neutral", "anxious"]
        trained_on_synthetic = False
        preprocessing = Preprocessing()

    predictor = Predictor(
        Model(), None, batch_size=1, ema_alpha=0.3, threshold=None, positive_class="anxious"
    )  # type: ignore[arg-type]
    assert predictor.label(np.array([np.nan, np.nan])) is None
    assert predictor.label(np.array([0.2, 0.8])) == "anxious"


def test_eval_of_a_copied_checkpoint_with_a_store(run, tmp_path: Path, tiny_store_path) -> None:
    _, trained = run
    copy = tmp_path / "elsewhere" / "model.ckpt"
    copy.parent.mkdir()
    shutil.copy(trained["best_checkpoint"], copy)
    result = evaluate(
        eval_config(f"ckpt_path={copy}", f"data.path={tiny_store_path}", "bootstrap.resamples=50")
    )
    output = Path(result["output_dir"])
    assert (output / "metrics.json").is_file() and (output / "report.md").is_file()
    assert result["data_settings"]["split_strategy"] == "official"
    assert result["metrics"]["test/acc"] == pytest.approx(trained["test"]["test/acc"], abs=1e-6)


def test_a_copied_run_directory_evaluates_itself(run, tmp_path: Path) -> None:
    run_dir, _ = run
    copy = tmp_path / "copy"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("eval"))
    shutil.rmtree(run_dir / "eval", ignore_errors=True)
    result = evaluate(eval_config(f"run_dir={copy}", "bootstrap.resamples=50"))
    assert Path(result["ckpt_path"]).is_relative_to(copy)
    assert (copy / "eval" / "metrics.json").is_file()
    assert not (run_dir / "eval").exists(), "nothing is written into the original"


@pytest.mark.parametrize(
    ("attribute", "value", "message"),
    [
        ("schema_version", "one", "attribute 'schema_version' is 'one'"),
        ("complete", "false", "attribute 'complete' is 'false'"),
    ],
)
def test_store_attributes_of_the_wrong_type_are_named(
    make_store, attribute: str, value: str, message: str
) -> None:
    path = make_store([0, 1], ["a", "b"])
    with h5py.File(path, "a") as handle:
        handle.attrs[attribute] = value
    with pytest.raises(StoreError, match=message):
        read_store(path)


def test_an_empty_store_says_it_is_empty(make_store) -> None:
    path = make_store([], [], landmarks=np.zeros((0, 478, 3), np.float32))
    with pytest.raises(EmotionError, match="holds no rows"):
        LandmarkDataModule(str(path)).setup()


def test_metrics_json_records_the_model_trained_on_synthetic_data(run) -> None:
    run_dir, trained = run
    checkpoint = torch.load(trained["best_checkpoint"], weights_only=True)
    assert checkpoint["LandmarkDataModule"]["data_settings"]["synthetic"] is True
    assert load_trained(Path(trained["best_checkpoint"])).trained_on_synthetic is True
    assert json.loads((run_dir / "metrics.json").read_text())["synthetic_data"] is True
