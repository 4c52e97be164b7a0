"""Ensembles over seeds or folds: averaged probabilities in evaluation, prediction and export,
and no scoring of people a member trained on."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from emotion.errors import EmotionError
from emotion.evaluate.evaluation import evaluate
from emotion.inference.ensemble import checkpoints_of, load_model
from emotion.inference.trained import load_trained
from emotion.store.io import read_store
from tests.trained_run import eval_config, train_tiny


@pytest.fixture(scope="module")
def sweeps(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_store_path: Path,
    synthetic_run: tuple[Path, dict[str, Any]],
) -> dict[str, Path]:
    """Two seeds of one split, and two folds of a 2-fold split, as sweep folders. Seed 42 is a
    copy of the shared tiny run (conftest.py), so only seed 1 is trained here."""
    root = tmp_path_factory.mktemp("sweeps")
    shutil.copytree(synthetic_run[0], root / "seeds" / "seed-42")
    train_tiny(tiny_store_path, root / "seeds" / "seed-1", "seed=1")
    for fold in (0, 1):
        train_tiny(
            tiny_store_path,
            root / "folds" / f"fold-{fold}",
            "data.split_strategy=kfold",
            "data.num_folds=2",
            f"data.fold={fold}",
        )
    return {"seeds": root / "seeds", "folds": root / "folds", "store": tiny_store_path}


def _raw_landmarks(store: Path, rows: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Raw landmarks and (width, height) image sizes of the first rows of a store."""
    stored = read_store(store)
    return stored.landmarks[:rows].copy(), stored.image_size[:rows].astype(np.float32)


def test_ensemble_probabilities_are_the_mean_of_its_members(sweeps: dict[str, Path]) -> None:
    ensemble = load_model(str(sweeps["seeds"]))
    assert ensemble.is_ensemble and len(ensemble) == 2
    members = [load_trained(path) for path in checkpoints_of(str(sweeps["seeds"]))]
    features = ensemble.features(*_raw_landmarks(sweeps["store"]))
    each = [member.probabilities(features) for member in members]
    assert not torch.allclose(each[0], each[1]), "two seeds should not agree exactly"
    torch.testing.assert_close(ensemble.probabilities(features), (each[0] + each[1]) / 2)


def test_members_are_named_by_sweep_glob_or_list(sweeps: dict[str, Path]) -> None:
    seeds = sweeps["seeds"]
    assert len(checkpoints_of(str(seeds))) == 2
    assert len(checkpoints_of(str(seeds / "*seed-1*"))) == 1
    assert not load_model(str(seeds / "*seed-1*")).is_ensemble
    both = load_model([str(seeds / "seed-1"), str(seeds / "seed-42")])
    assert both.is_ensemble and both.run_dir == seeds.resolve()
    with pytest.raises(EmotionError, match="matches no file"):
        checkpoints_of(str(seeds / "*nothing*"))


def test_seed_ensemble_evaluates_and_fold_ensemble_cannot_score_its_own_people(
    sweeps: dict[str, Path],
) -> None:
    # Quoted as on a command line: real sweep folders hold '=' and ','.
    result = evaluate(eval_config(f"run_dir='{sweeps['seeds']}/*'", "bootstrap.resamples=50"))
    assert len(result["ensemble"]) == 2
    output = Path(result["output_dir"])
    assert output.parent == sweeps["seeds"].resolve() and output.name.startswith("eval-ensemble-")
    assert (output / "report.md").is_file()
    with pytest.raises(EmotionError, match="trained on .* people of this test split"):
        evaluate(eval_config(f"run_dir='{sweeps['folds']}'", "bootstrap.resamples=50"))


def test_ensembles_of_other_members_keep_their_own_evaluations(sweeps: dict[str, Path]) -> None:
    """Two globs naming other members never share an evaluation folder; the same members,
    however named (a glob, the sweep folder), do."""
    from emotion.evaluate.folders import evaluation_folder

    seeds = sweeps["seeds"]
    cfg = eval_config()
    report = seeds / "eval-ensemble-earlier"  # an earlier evaluation's output is no member
    report.mkdir(exist_ok=True)
    (report / "metrics.json").write_text("{}")
    both = evaluation_folder(load_model(f"{seeds}/*"), cfg)
    assert evaluation_folder(load_model(str(seeds)), cfg) == both
    other = [str(seeds / "seed-1" / "checkpoints" / "last.ckpt"), str(seeds / "seed-42")]
    assert evaluation_folder(load_model(other), cfg) not in (both, None)
    assert evaluation_folder(load_model(other), cfg).parent == both.parent


def test_members_with_other_preprocessing_are_refused(
    sweeps: dict[str, Path], tiny_store_path: Path, tmp_path: Path
) -> None:
    train_tiny(tiny_store_path, tmp_path / "none", "data.normalization=none")
    with pytest.raises(EmotionError, match="differ in normalization"):
        load_model([str(sweeps["seeds"] / "seed-1"), str(tmp_path / "none")])


def test_exported_ensemble_graph_gives_the_mean_probabilities(
    sweeps: dict[str, Path], tmp_path: Path
) -> None:
    onnxruntime = pytest.importorskip(
        "onnxruntime", reason="ONNX export needs the export extra: pip install -e '.[export]'"
    )
    from emotion.export.onnx import export

    info = export(str(sweeps["seeds"]), tmp_path / "ensemble.onnx")
    assert len(info["ensemble"]) == 2
    landmarks, sizes = _raw_landmarks(sweeps["store"])
    session = onnxruntime.InferenceSession(info["onnx"], providers=["CPUExecutionProvider"])
    feeds = {"landmarks": landmarks}
    if "image_size" in info["inputs"]:
        feeds["image_size"] = sizes
    (got,) = session.run(["probabilities"], feeds)
    ensemble = load_model(str(sweeps["seeds"]))
    expected = ensemble.probabilities(ensemble.features(landmarks, sizes)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_predict_with_a_sweep_folder_averages_its_runs(
    sweeps: dict[str, Path], tmp_path: Path
) -> None:
    pytest.importorskip("mediapipe", reason="emotion-predict needs the extract extra")
    from emotion.predict.pipeline import predict

    face = Path(__file__).parent / "fixtures" / "astronaut.jpg"
    probabilities = []
    for model in (sweeps["seeds"] / "seed-1", sweeps["seeds"] / "seed-42", sweeps["seeds"]):
        output = tmp_path / f"{model.name}.jsonl"
        summary = predict(str(model), [str(face)], output)
        (row,) = [json.loads(line) for line in output.read_text().splitlines()]
        probabilities.append(np.array([row["p_neutral"], row["p_anxious"]]))
    assert len(summary["ensemble"]) == 2
    np.testing.assert_allclose(
        probabilities[2], (probabilities[0] + probabilities[1]) / 2, atol=1e-6
    )
