"""`model=linear`: logistic regression on the residual MLP's own features, through the same
LightningModule, checkpoint, evaluation, prediction, export and serving; checkpoints from
before `model.architecture` still load as the residual MLP."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emotion.checkpoint import read_checkpoint
from emotion.inference.ensemble import load_model
from emotion.inference.trained import load_trained
from emotion.store.io import read_store
from tests.commands import TINY
from tests.trained_run import eval_config, train_command, train_tiny

FACE = Path(__file__).resolve().parent / "fixtures" / "astronaut.jpg"


@pytest.fixture(scope="module")
def linear_run(
    tmp_path_factory: pytest.TempPathFactory, tiny_store_path: Path
) -> tuple[Path, dict[str, Any]]:
    """A tiny model=linear run on the tiny SYNTHETIC store, two epochs, and its metrics.json."""
    run_dir = tmp_path_factory.mktemp("linear") / "run"
    return run_dir, train_tiny(tiny_store_path, run_dir, "model=linear", "trainer.max_epochs=2")


def test_model_linear_trains_one_linear_layer(linear_run: tuple[Path, dict[str, Any]]) -> None:
    run_dir, result = linear_run
    checkpoint = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")  # weights_only=True
    hparams = checkpoint["hyper_parameters"]
    assert hparams["architecture"] == "linear" and type(hparams["architecture"]) is str
    assert hparams["label_smoothing"] == 0.0 and hparams["weight_decay"] > 0
    inputs, classes = hparams["input_dim"], len(hparams["class_names"])
    weights = checkpoint["state_dict"]
    assert set(weights) == {"model.weight", "model.bias"}
    assert weights["model.weight"].shape == (classes, inputs)
    assert result["n_params"] == inputs * classes + classes == 478 * 3 * 2 + 2
    assert result["config"]["model"]["architecture"] == "linear"
    assert 0.0 <= result["test"]["test/bal_acc"] <= 1.0
    assert isinstance(
        load_trained(run_dir / "checkpoints" / "last.ckpt").networks[0], torch.nn.Linear
    )


def test_emotion_eval_on_a_linear_run_gives_the_training_test_metrics(
    linear_run: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """emotion-eval's own main: the network rebuilt from the checkpoint alone scores exactly
    what training's test scored."""
    from emotion.evaluate.app import main

    run_dir, trained = linear_run
    monkeypatch.chdir(tmp_path)
    main([str(run_dir), "bootstrap.resamples=20"])
    result = json.loads((run_dir / "eval" / "metrics.json").read_text())
    for key in ("test/bal_acc", "test/auroc", "test/recall_anxious"):
        assert result["metrics"][key] == trained["test"][key], key


def test_emotion_predict_on_a_linear_run_writes_a_row(
    linear_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    pytest.importorskip("mediapipe", reason="predicting on photos needs the extract extra")
    from emotion.predict.app import main

    output = tmp_path / "p.csv"
    main([str(linear_run[0]), str(FACE), "-o", str(output)])  # an error would exit 2
    (row,) = list(csv.DictReader(output.open()))
    assert row["face"] == "True" and row["label"] in ("neutral", "anxious")
    assert float(row["p_neutral"]) + float(row["p_anxious"]) == pytest.approx(1.0, abs=1e-5)


def store_rows(store: Path, rows: int) -> tuple[np.ndarray, np.ndarray]:
    data = read_store(store)
    return data.landmarks[:rows], data.image_size[:rows]


def test_the_onnx_export_of_a_linear_run_gives_the_torch_probabilities(
    linear_run: tuple[Path, dict[str, Any]], tiny_store_path: Path, tmp_path: Path
) -> None:
    onnxruntime = pytest.importorskip(
        "onnxruntime", reason="ONNX export needs the export extra: pip install -e '.[export]'"
    )
    pytest.importorskip("onnx", reason="ONNX export needs the export extra")
    from emotion.export.onnx import TOLERANCE, export

    run_dir, _ = linear_run
    info = export(run_dir, tmp_path / "m.onnx")
    assert info["check"]["max_abs_difference"] <= TOLERANCE
    trained = load_model(str(run_dir))  # the run's tested checkpoint, as export and serve take
    landmarks, sizes = store_rows(tiny_store_path, 9)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    feeds = {"landmarks": landmarks.astype(np.float32), "image_size": sizes.astype(np.float32)}
    (got,) = session.run(["probabilities"], feeds)
    expected = trained.probabilities(trained.features(landmarks, sizes)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert len(set(np.round(expected[:, 1], 4))) > 1, "the rows should not all score alike"


def test_emotion_serve_answers_landmarks_with_a_linear_run(
    linear_run: tuple[Path, dict[str, Any]], tiny_store_path: Path
) -> None:
    pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
    pytest.importorskip("mediapipe", reason="the serving tests need the extract extra")
    from fastapi.testclient import TestClient

    from emotion.serve.api import create_app
    from emotion.serve.engine import Engine
    from emotion.serve.settings import ServeSettings

    run_dir, _ = linear_run
    trained = load_model(str(run_dir))  # the run's tested checkpoint, as export and serve take
    landmarks, sizes = store_rows(tiny_store_path, 2)
    expected = trained.probabilities(trained.features(landmarks, sizes))
    engine = Engine(load_model(str(run_dir)), ServeSettings(allowed_hosts=("testserver",)))
    with TestClient(create_app(engine)) as client:
        for row in range(2):
            answer = client.post(
                "/v1/predict/landmarks",
                json={"landmarks": landmarks[row].tolist(), "image_size": sizes[row].tolist()},
            )
            assert answer.status_code == 200, answer.text
            probabilities = answer.json()["probabilities"]
            for column, name in enumerate(trained.class_names):
                assert probabilities[name] == pytest.approx(float(expected[row, column]), abs=1e-5)


def test_an_enrolled_linear_run_predicts_with_enroll_as_evaluation_scores(
    photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    """data.baseline=enrolled with model=linear: emotion-predict --enroll gives each photo the
    probabilities emotion-eval gave it against the same rest face."""
    from emotion.evaluate.evaluation import evaluate
    from emotion.predict.app import main

    root, store = photo_store
    run_dir = tmp_path / "run"
    train_tiny(store, run_dir, "model=linear", "data.baseline=enrolled", "data.min_val_subjects=10")
    result = evaluate(eval_config(f"run_dir={run_dir}", "bootstrap.resamples=20"))
    rows = list(csv.DictReader((Path(result["output_dir"]) / "predictions.csv").open()))
    (enrolled,) = result["baseline"]["reference_photos"]["pC"]
    scored = {row["source"]: row for row in rows if row["subject"] == "pC"}
    output = tmp_path / "p.csv"
    photos = [str(root / source) for source in sorted(scored)]
    main([str(run_dir), *photos, "--enroll", str(root / enrolled), "-o", str(output)])
    predicted = list(csv.DictReader(output.open()))
    assert len(predicted) == len(scored) > 0
    for row in predicted:
        expected = scored[str(Path(row["source"]).relative_to(root))]
        for name in ("p_neutral", "p_anxious"):
            assert float(row[name]) == pytest.approx(float(expected[name]), abs=1e-6)


def test_a_wrong_architecture_is_refused_naming_the_key(
    tiny_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["data=store", f"data.path={tiny_store_path}", *TINY]
    status = train_command(tmp_path / "run", *store, "model.architecture=logistic")
    stderr = capsys.readouterr().err
    assert status == 2, stderr
    assert "full_key: model.architecture" in stderr and "logistic" in stderr
    assert "expected one of [residual_mlp, linear]" in stderr and "fix:" in stderr
    assert "Traceback" not in stderr and not (tmp_path / "run").exists()


def test_fine_tuning_a_trunk_into_a_linear_model_is_refused(
    tiny_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = ["data=store", f"data.path={tiny_store_path}", *TINY]
    status = train_command(
        tmp_path / "run", *store, "experiment=finetune_binary", "model=linear", "init_from=x.ckpt"
    )
    stderr = capsys.readouterr().err
    assert status == 2, stderr
    assert "error: init_from" in stderr and "model.architecture=linear" in stderr


def test_a_residual_run_does_not_resume_as_a_linear_one(
    synthetic_run: tuple[Path, dict[str, Any]],
    tiny_store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The same run directory with model=linear: refused naming the architecture, the
    residual run's checkpoints kept."""
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    before = (run_dir / "checkpoints" / "last.ckpt").read_bytes()
    store = ["data=store", f"data.path={tiny_store_path}", *TINY, "trainer.max_epochs=2"]
    status = train_command(run_dir, *store, "model=linear", "data.min_val_subjects=0")
    stderr = capsys.readouterr().err
    assert status == 2, stderr
    assert "architecture: residual_mlp -> linear" in stderr
    assert (run_dir / "checkpoints" / "last.ckpt").read_bytes() == before


def test_a_linear_run_resumes_whatever_the_settings_it_does_not_use(
    linear_run: tuple[Path, dict[str, Any]],
    tiny_store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """model.width means nothing to one Linear layer: a rerun with another width resumes the
    linear run rather than refusing it as a different model."""
    run_dir = tmp_path / "run"
    shutil.copytree(linear_run[0], run_dir)
    store = ["data=store", f"data.path={tiny_store_path}", "data.min_val_subjects=0", *TINY]
    status = train_command(
        run_dir, *store, "model=linear", "model.width=64", "trainer.max_epochs=3"
    )
    assert status == 0, capsys.readouterr().err
    checkpoint = read_checkpoint(run_dir / "checkpoints" / "last.ckpt")
    assert checkpoint["epoch"] == 2 and set(checkpoint["state_dict"]) == {
        "model.weight",
        "model.bias",
    }


def test_a_checkpoint_from_before_the_architecture_key_loads_as_the_residual_mlp(
    synthetic_run: tuple[Path, dict[str, Any]], tiny_store_path: Path, tmp_path: Path
) -> None:
    from emotion.checkpoint import check_same_architecture
    from emotion.models.residual_mlp import ResidualMLP

    source = synthetic_run[0] / "checkpoints" / "last.ckpt"
    checkpoint = torch.load(source, map_location="cpu", weights_only=True)
    assert checkpoint["hyper_parameters"].pop("architecture") == "residual_mlp"
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    old = run_dir / "checkpoints" / "last.ckpt"
    torch.save(checkpoint, old)
    trained, current = load_trained(old), load_trained(source)
    assert isinstance(trained.networks[0], ResidualMLP)
    landmarks, sizes = store_rows(tiny_store_path, 5)
    features = trained.features(landmarks, sizes)
    torch.testing.assert_close(trained.probabilities(features), current.probabilities(features))
    saved = checkpoint["hyper_parameters"]
    check_same_architecture(old, saved, current.members[0].hparams)  # resumes: no error


def test_the_checkpoint_contract_knows_every_architecture() -> None:
    """emotion/checkpoint.py spells the architectures as plain strings (it comes before the
    models room): the same names and default as the schema's Enum."""
    from emotion import checkpoint
    from emotion.models.choices import DEFAULT_ARCHITECTURE, Architecture

    assert set(checkpoint.ARCHITECTURE_KEYS) == {member.value for member in Architecture}
    assert checkpoint.DEFAULT_ARCHITECTURE == DEFAULT_ARCHITECTURE.value
    assert checkpoint.architecture_of({}) == "residual_mlp"
    assert checkpoint.architecture_of({"architecture": Architecture.linear}) == "linear"


def test_a_checkpoint_naming_an_unknown_architecture_is_a_user_error(
    synthetic_run: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """emotion-eval on a checkpoint from another version naming a network this one lacks:
    error:/fix:, exit 2, not a ValueError traceback."""
    from emotion.evaluate.app import main

    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    for path in (run_dir / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
        checkpoint["hyper_parameters"]["architecture"] = "transformer"
        torch.save(checkpoint, path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stopped:
        main([str(run_dir), "bootstrap.resamples=20"])
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2, stderr
    assert "error: model.architecture='transformer' is not known" in stderr and "fix:" in stderr
