"""FaceLandmarker's blendshapes and head pose as model inputs (data.features,
data.normalization=pose) through train, eval, predict, export and serve; and faces of one
landmark extractor never scored by a model of another (a version 1 store is the legacy
FaceMesh graph's)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from emotion.errors import EmotionError
from emotion.inference.ensemble import load_model
from emotion.store.io import read_store
from tests.commands import emotion
from tests.trained_run import eval_config

pytest.importorskip("mediapipe", reason="the photo tests need the extract extra")

LEGACY = Path(__file__).parent / "fixtures" / "legacy"
RECIPE = (
    "data.features=landmarks+blendshapes",
    "data.normalization=pose",
    "data.baseline=enrolled",
    "data.min_val_subjects=10",
)


@pytest.fixture(scope="module")
def faces_run(photo_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run reading landmarks (through the head pose) and blendshapes, against each
    person's enrolled rest face."""
    from tests.trained_run import train_tiny

    run_dir = tmp_path_factory.mktemp("faces") / "run"
    train_tiny(photo_store[1], run_dir, *RECIPE)
    return run_dir


def test_an_extracted_store_holds_blendshapes_pose_and_its_extractor(
    photo_store: tuple[Path, Path],
) -> None:
    from emotion.facemesh.landmarker import BLENDSHAPE_NAMES, extractor_identity

    store = read_store(photo_store[1])
    assert store.blendshapes.shape == (len(store), 52) and store.has_blendshapes
    assert store.pose.shape == (len(store), 4, 4) and store.has_pose
    assert store.extractor == extractor_identity()
    with h5py.File(photo_store[1], "r") as handle:
        assert handle.attrs["schema_version"] == 2
        assert json.loads(handle.attrs["blendshape_names"]) == list(BLENDSHAPE_NAMES)


def test_the_recipe_trains_and_evaluates_on_what_the_checkpoint_records(faces_run: Path) -> None:
    from emotion.evaluate.evaluation import evaluate

    trained = load_model(str(faces_run))
    recipe = trained.preprocessing
    assert (recipe.feature_set, recipe.normalization, recipe.baseline) == (
        "landmarks+blendshapes",
        "pose",
        "enrolled",
    )
    assert trained.members[0].hparams["input_dim"] == 478 * 3 + 52
    result = evaluate(eval_config(f"run_dir={faces_run}", "bootstrap.resamples=20"))
    assert result["baseline"]["protocol"] == "enrolled"


def test_the_graph_and_the_numpy_path_agree_on_real_faces(
    faces_run: Path, photo_store: tuple[Path, Path]
) -> None:
    """Training's numpy features and the module's torch ops (what is exported) give the same
    probabilities for the store's own faces against a rest face."""
    trained = load_model(str(faces_run))
    store = read_store(photo_store[1])
    rows = np.arange(6)
    reference = trained.preprocessing.reference(
        store.landmarks[:1], store.image_size[:1], store.blendshapes[:1], store.pose[:1]
    )
    numpy_path = trained.probabilities(
        trained.features(
            store.landmarks[rows],
            store.image_size[rows],
            reference,
            store.blendshapes[rows],
            store.pose[rows],
        )
    ).numpy()

    def tensor(values: np.ndarray, references: bool = False) -> torch.Tensor:
        values = torch.from_numpy(np.asarray(values, dtype=np.float32))
        return values[:1][None].expand(len(rows), *values[:1].shape) if references else values

    with torch.no_grad():
        graph = trained(
            landmarks=tensor(store.landmarks[rows]),
            image_size=tensor(store.image_size[rows]),
            blendshapes=tensor(store.blendshapes[rows]),
            pose=tensor(store.pose[rows]),
            reference_landmarks=tensor(store.landmarks, True),
            reference_image_size=tensor(store.image_size, True),
            reference_blendshapes=tensor(store.blendshapes, True),
            reference_pose=tensor(store.pose, True),
        ).numpy()
    np.testing.assert_allclose(graph, numpy_path, atol=1e-5, rtol=0)


def test_predict_with_enroll_gives_the_probabilities_evaluation_gives(
    faces_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    from emotion.evaluate.evaluation import evaluate
    from emotion.predict.pipeline import predict

    root, _ = photo_store
    result = evaluate(eval_config(f"run_dir={faces_run}", "bootstrap.resamples=20"))
    rows = list(csv.DictReader((Path(result["output_dir"]) / "predictions.csv").open()))
    (enrolled,) = result["baseline"]["reference_photos"]["pC"]
    scored = {row["source"]: row for row in rows if row["subject"] == "pC"}
    output = tmp_path / "p.csv"
    predict(faces_run, [str(root / source) for source in sorted(scored)], output,
            enroll=[str(root / enrolled)])  # fmt: skip
    predicted = list(csv.DictReader(output.open()))
    assert len(predicted) == len(scored)
    for row in predicted:
        expected = scored[str(Path(row["source"]).relative_to(root))]
        for name in ("p_neutral", "p_anxious"):
            assert float(row[name]) == pytest.approx(float(expected[name]), abs=1e-6)


def test_the_onnx_export_takes_blendshapes_and_pose(
    faces_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    onnxruntime = pytest.importorskip("onnxruntime", reason="needs the export extra")
    pytest.importorskip("onnx", reason="needs the export extra")
    from emotion.export.onnx import export

    info = export(faces_run, tmp_path / "m.onnx")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    names = [item.name for item in session.get_inputs()]
    assert names == [
        "landmarks",
        "image_size",
        "reference_landmarks",
        "reference_image_size",
        "blendshapes",
        "pose",
        "reference_blendshapes",
        "reference_pose",
    ], names
    store = read_store(photo_store[1])
    trained = load_model(str(faces_run))
    rows = slice(4, 10)
    feeds = {
        "landmarks": store.landmarks[rows],
        "image_size": store.image_size[rows].astype(np.float32),
        "blendshapes": store.blendshapes[rows],
        "pose": store.pose[rows],
    }
    feeds |= {f"reference_{key}": value[:1][None].repeat(6, 0) for key, value in {
        "landmarks": store.landmarks, "image_size": store.image_size.astype(np.float32),
        "blendshapes": store.blendshapes, "pose": store.pose}.items()}  # fmt: skip
    (got,) = session.run(["probabilities"], feeds)
    reference = trained.preprocessing.reference(
        store.landmarks[:1], store.image_size[:1], store.blendshapes[:1], store.pose[:1]
    )
    expected = trained.probabilities(
        trained.features(
            store.landmarks[rows],
            store.image_size[rows],
            reference,
            store.blendshapes[rows],
            store.pose[rows],
        )
    ).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)
    assert info["check"]["max_abs_difference"] <= 1e-5


def test_the_server_asks_for_the_inputs_the_model_reads(
    faces_run: Path, photo_store: tuple[Path, Path]
) -> None:
    pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
    from fastapi.testclient import TestClient

    from emotion.serve.api import create_app
    from emotion.serve.engine import Engine
    from emotion.serve.settings import ServeSettings

    store = read_store(photo_store[1])
    engine = Engine(load_model(str(faces_run)), ServeSettings(allowed_hosts=("testserver",)))

    def face(row: int, **leave_out: bool) -> dict:
        body = {
            "landmarks": store.landmarks[row].tolist(),
            "image_size": store.image_size[row].tolist(),
            "blendshapes": store.blendshapes[row].tolist(),
            "pose": store.pose[row].tolist(),
        }
        return {key: value for key, value in body.items() if not leave_out.get(key)}

    try:
        with TestClient(create_app(engine)) as client:
            session = client.post("/v1/sessions").json()["id"]
            for missing, said in (("blendshapes", "blendshape"), ("pose", "pose")):
                answer = client.post(
                    f"/v1/sessions/{session}/enroll",
                    json={"faces": [face(0, **{missing: True})]},
                )
                assert answer.status_code == 422 and said in answer.json()["error"], answer.json()
            enrolled = client.post(f"/v1/sessions/{session}/enroll", json={"faces": [face(0)]})
            assert enrolled.status_code == 200, enrolled.json()
            scored = client.post(f"/v1/sessions/{session}/predict/landmarks", json=face(5))
            assert scored.status_code == 200, scored.json()
            bad = face(5)
            bad["blendshapes"] = [2.0] * 52
            refused = client.post(f"/v1/sessions/{session}/predict/landmarks", json=bad)
            assert refused.status_code == 422 and "0..1" in refused.json()["error"]
    finally:
        engine.close()


def test_blendshapes_on_synthetic_data_are_refused_naming_the_fix(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    done = emotion(
        "emotion.training",
        "data=store",
        f"data.path={tiny_store_path}",
        "data.features=blendshapes",
        "trainer.max_epochs=1",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert "blendshape" in done.stderr and "fix:" in done.stderr
    assert "data.features=landmarks" in done.stderr


def test_a_version_1_store_and_a_today_checkpoint_refuse_each_other(
    plain_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    """A v1 store (the legacy FaceMesh graph's faces) is not scored by a model trained on
    FaceLandmarker's, and a model trained on a v1 store scores no FaceLandmarker face."""
    from emotion.evaluate.evaluation import evaluate
    from emotion.predict.pipeline import predict

    legacy_store = read_store(LEGACY / "store_v1.h5")
    assert legacy_store.extractor["name"] == "mediapipe-face-mesh-legacy"
    assert not legacy_store.has_blendshapes and not legacy_store.has_pose
    with pytest.raises(EmotionError, match="not interchangeable") as raised:
        evaluate(eval_config(f"run_dir={plain_run}", f"data.path={LEGACY / 'store_v1.h5'}"))
    assert "mediapipe-face-mesh-legacy" in raised.value.problem
    assert "re-extract" in raised.value.fix

    legacy_model = LEGACY / "model_v1.ckpt"
    photo = str(next((photo_store[0] / "test" / "anxious").iterdir()))
    done = emotion(
        "emotion.predict", str(legacy_model), photo, "--output", str(tmp_path / "p.csv"),
        cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2 and "not interchangeable" in done.stderr, done.stderr[-2000:]
    assert not (tmp_path / "p.csv").exists()
    with pytest.raises(EmotionError, match="not interchangeable"):
        predict(legacy_model, [photo], tmp_path / "q.csv")
    with pytest.raises(EmotionError, match="not interchangeable"):
        evaluate(eval_config(f"ckpt_path={legacy_model}", f"data.path={photo_store[1]}"))
