"""The personal baseline through data, training, evaluation, prediction and export.

Photos are the astronaut fixture, scaled and shifted per "person" and per photo (FaceMesh runs
on them for real: tests/photo_runs.py); stores for the protocol tests are tiny SYNTHETIC ones.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emotion.data.datamodule import LandmarkDataModule
from emotion.errors import EmotionError
from emotion.evaluate.evaluation import evaluate
from emotion.inference.trained import load_trained
from emotion.store.io import write_store
from tests.trained_run import eval_config, train_tiny

pytest.importorskip("mediapipe", reason="the photo tests need the extract extra")


def _synthetic_store(tmp_path: Path, tiny_synthetic) -> Path:
    path = tmp_path / "store.h5"
    write_store(path, tiny_synthetic)
    return path


def test_an_enrollment_photo_is_never_scored(tiny_store_path: Path) -> None:
    data = LandmarkDataModule(str(tiny_store_path), baseline="enrolled", enroll_per_subject=2)
    data.setup()
    summary = data.summary["baseline"]["stages"]
    for stage in ("train", "val", "test"):
        scored = set(data.sources(stage).tolist())
        references = {s for found in data.reference_sources[stage].values() for s in found}
        assert references and not scored & references, stage
        assert summary[stage]["reference_rows"] == len(references)
        assert all(len(found) == 2 for found in data.reference_sources[stage].values())


def test_a_person_without_a_neutral_photo_is_counted_and_named(make_store) -> None:
    label = [0, 0, 1, 1, 1, 0, 0, 1, 1]
    subject = ["a"] * 4 + ["b"] + ["c"] * 4  # b has no neutral photo
    path = make_store(label, subject, split=["train"] * 4 + ["test"] * 5)
    data = LandmarkDataModule(str(path), baseline="enrolled", val_fraction=0)
    data.setup()
    test = data.summary["baseline"]["stages"]["test"]
    assert test["unscored_people"] == ["b"] and test["unscored_rows"] == 1
    assert set(data.subjects("test").tolist()) == {"c"}


@pytest.mark.parametrize("baseline", ["enrolled", "session"])
def test_a_person_whose_only_photo_is_the_reference_is_named_not_scored(
    make_store, tmp_path: Path, baseline: str
) -> None:
    """A real store's edge: one person's only photo is a neutral one, so once it is their
    reference (or, in a session, their own mean) nothing is left to score. Train, evaluate
    and the stage summaries name them; nothing crashes."""
    people = [f"t{index}" for index in range(4)]
    subject = [person for person in people for _ in range(4)] + ["solo_train"]
    label = [0, 0, 1, 1] * 4 + [0]
    split = ["train"] * 17
    test_people = [f"e{index}" for index in range(3)]
    subject += [person for person in test_people for _ in range(4)] + ["solo_test"]
    label += [0, 0, 1, 1] * 3 + [0]
    split += ["test"] * 13
    path = make_store(label, subject, split=split)
    data = LandmarkDataModule(str(path), baseline=baseline, val_fraction=0)
    data.setup()
    stages = data.summary["baseline"]["stages"]
    assert stages["train"]["unscored_people"] == ["solo_train"]
    assert stages["test"]["unscored_people"] == ["solo_test"]
    assert "solo_test" not in set(data.subjects("test").tolist())
    run_dir = tmp_path / "run"
    metrics = train_tiny(path, run_dir, f"data.baseline={baseline}", "data.val_fraction=0")
    assert metrics["test"]["test/bal_acc"] >= 0
    result = evaluate(eval_config(f"run_dir={run_dir}", "bootstrap.resamples=20"))
    assert result["baseline"]["unscored_people"] == ["solo_test"]
    assert result["baseline"]["unscored_rows"] == 1


def test_session_features_ignore_the_labels_of_validation_and_test(make_store) -> None:
    rng = np.random.default_rng(0)
    subject = [f"p{index % 8}" for index in range(48)]
    label = [int(rng.random() < 0.5) for _ in subject]
    label[:8], label[8:16] = [0] * 8, [1] * 8  # every person has both classes
    landmarks = rng.random((48, 478, 3), dtype=np.float32)
    first = make_store(label, subject, landmarks=landmarks, name="a.h5")
    tested = {"p2", "p5"}  # kfold, 4 folds: the test people of fold 3 (checked below)
    permuted = [
        1 - lab if person in tested else lab for lab, person in zip(label, subject, strict=True)
    ]
    second = make_store(permuted, subject, landmarks=landmarks, name="b.h5")
    features = []
    for path in (first, second):
        data = LandmarkDataModule(
            str(path), baseline="session", split_strategy="kfold", num_folds=4, fold=3
        )
        data.setup()
        assert set(data.subjects("test").tolist()) == tested
        features.append({stage: data.rows(stage).features for stage in ("train", "test")})
    for stage in ("train", "test"):
        torch.testing.assert_close(features[0][stage], features[1][stage], rtol=0, atol=0)


def test_predict_with_enroll_gives_the_probabilities_evaluation_gives(
    photo_store: tuple[Path, Path], enrolled_run: Path, tmp_path: Path
) -> None:
    from emotion.predict.pipeline import predict

    root, store = photo_store
    result = evaluate(eval_config(f"run_dir={enrolled_run}", "bootstrap.resamples=20"))
    assert result["baseline"]["protocol"] == "enrolled"
    rows = list(csv.DictReader((Path(result["output_dir"]) / "predictions.csv").open()))
    person = "pC"
    (enrolled,) = result["baseline"]["reference_photos"][person]
    scored = {row["source"]: row for row in rows if row["subject"] == person}
    assert scored and enrolled not in scored
    output = tmp_path / "p.csv"
    predict(
        enrolled_run,
        [str(root / source) for source in sorted(scored)],
        output,
        enroll=[str(root / enrolled)],
    )
    predicted = list(csv.DictReader(output.open()))
    assert len(predicted) == len(scored)
    for row in predicted:
        expected = scored[str(Path(row["source"]).relative_to(root))]
        assert row["reference"] == f"enroll: {root / enrolled}"
        for name in ("p_neutral", "p_anxious"):
            assert float(row[name]) == pytest.approx(float(expected[name]), abs=1e-6)


def test_a_baseline_model_without_a_reference_is_refused(
    photo_store: tuple[Path, Path], enrolled_run: Path, tmp_path: Path
) -> None:
    from emotion.predict.pipeline import predict

    root, _ = photo_store
    photo = str(next((root / "test" / "anxious").iterdir()))
    with pytest.raises(EmotionError, match="none was given"):
        predict(enrolled_run, [photo], tmp_path / "p.csv")
    assert not (tmp_path / "p.csv").exists()
    pytest.importorskip("onnxruntime", reason="needs the export extra")
    from emotion.export.onnx import deployable

    module = deployable(load_trained(enrolled_run / "checkpoints" / "last.ckpt"))
    with pytest.raises(ValueError, match="reference"):
        module(torch.rand(2, 478, 3), torch.full((2, 2), 640.0))


def test_a_session_of_one_photo_is_not_scored_against_itself(
    photo_store: tuple[Path, Path], enrolled_run: Path, tmp_path: Path
) -> None:
    """`--baseline session` on one photo would read it against itself: "no change" for any
    face. It is marked no_reference; two photos are scored."""
    from emotion.predict.pipeline import predict

    root, _ = photo_store
    photos = sorted(str(path) for path in (root / "test" / "anxious").iterdir())
    summary = predict(enrolled_run, photos[:1], tmp_path / "one.csv", baseline="session")
    (row,) = list(csv.DictReader((tmp_path / "one.csv").open()))
    assert row["status"] == "no_reference" and not row.get("p_anxious")
    assert summary["no_reference"] == 1 and summary["faces"] == 0
    predict(enrolled_run, photos[:2], tmp_path / "two.csv", baseline="session")
    rows = list(csv.DictReader((tmp_path / "two.csv").open()))
    assert [row["status"] for row in rows] == ["ok", "ok"]


def test_onnx_with_a_reference_matches_torch(enrolled_run: Path, tmp_path: Path) -> None:
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the export extra")
    from emotion.export.onnx import TOLERANCE, export

    info = export(enrolled_run, tmp_path / "m.onnx")
    assert info["check"]["max_abs_difference"] <= TOLERANCE
    assert list(info["inputs"]) == [
        "landmarks",
        "image_size",
        "reference_landmarks",
        "reference_image_size",
    ]
    trained = load_trained(enrolled_run / "checkpoints" / "last.ckpt")
    rng = np.random.default_rng(0)
    landmarks = rng.random((5, 478, 3), dtype=np.float32)
    sizes = np.full((5, 2), [640, 480], dtype=np.float32)
    reference = rng.random((5, 2, 478, 3), dtype=np.float32)
    reference_sizes = np.full((5, 2, 2), [640, 480], dtype=np.float32)
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    (got,) = session.run(
        ["probabilities"],
        {
            "landmarks": landmarks,
            "image_size": sizes,
            "reference_landmarks": reference,
            "reference_image_size": reference_sizes,
        },
    )
    faces = np.stack(
        [trained.preprocessing.reference(reference[row], reference_sizes[row]) for row in range(5)]
    )
    expected = trained.probabilities(trained.features(landmarks, sizes, faces)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert (
        json.loads(Path(info["onnx"]).with_suffix(".json").read_text())["baseline"]["baseline"]
        == "enrolled"
    )


def test_resampled_training_references_change_every_epoch(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    """data.baseline_resample: each epoch its own training references; val and test keep
    theirs, and no reference photo is ever a training row in its own epoch."""
    from emotion.data.datamodule import LandmarkDataModule as DataModule

    data = DataModule(
        str(tiny_store_path), baseline="enrolled", baseline_resample=True, min_val_subjects=0
    )
    data.setup()
    test_before = data.rows("test").features.clone()
    drawn = []
    for epoch in range(4):
        data._redraw_training_references(epoch)
        protocol = data._redraw[0]
        references = set(protocol.references["train"].reference_rows.tolist())
        assert not references & set(data.rows("train").rows.tolist())
        drawn.append(references)
    assert len({frozenset(found) for found in drawn}) > 1, "the draws change across epochs"
    torch.testing.assert_close(data.rows("test").features, test_before, rtol=0, atol=0)
    with pytest.raises(EmotionError, match="baseline_resample"):
        DataModule(str(tiny_store_path), baseline="session", baseline_resample=True)
