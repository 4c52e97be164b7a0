"""emotion-export: the raw-landmark graph matches the training path, and ONNX matches torch."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from emotion.checkpoint import DATA_SETTINGS_KEY, PREPROCESSING_KEY
from emotion.errors import EmotionError
from emotion.export.onnx import deployable
from emotion.facemesh.landmarker import extractor_identity
from emotion.features.preprocessing import normalize
from emotion.inference.trained import load_trained
from emotion.models.classifier import LandmarkClassifier
from emotion.store.schema import SCHEMA_VERSION


def _checkpoint(path: Path, normalization: str, aspect: bool) -> Path:
    """A small, randomly initialised checkpoint with non-trivial BatchNorm statistics."""
    torch.manual_seed(0)
    model = LandmarkClassifier(["neutral", "anxious"], width=32, depth=1, head_width=16)
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(64, 1434))
    torch.save(
        {
            "state_dict": model.state_dict(),
            "hyper_parameters": dict(model.hparams),
            PREPROCESSING_KEY: {
                "store_schema_version": SCHEMA_VERSION,
                "normalization": normalization,
                "aspect_correction": aspect,
            },
            # Faces of today's extractor, as a checkpoint emotion-train writes records.
            DATA_SETTINGS_KEY: {"extractor": extractor_identity()},
        },
        path,
    )
    return path


def _raw(rows: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    landmarks = rng.random((rows, 478, 3), dtype=np.float32)
    landmarks[..., 2] -= 0.5
    sizes = rng.integers(200, 4000, (rows, 2)).astype(np.int32)
    return landmarks, sizes


@pytest.mark.parametrize(
    ("normalization", "aspect"), [("nose_unit", False), ("nose_unit", True), ("none", False)]
)
def test_in_graph_normalization_matches_the_training_path(
    tmp_path: Path, normalization: str, aspect: bool
) -> None:
    trained = load_trained(_checkpoint(tmp_path / "m.ckpt", normalization, aspect))
    landmarks, sizes = _raw(16)
    expected = trained.probabilities(trained.features(landmarks, sizes))
    with torch.no_grad():  # the same FaceModel, on raw landmarks in torch ops
        got = trained(torch.from_numpy(landmarks), torch.from_numpy(sizes) if aspect else None)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)
    features = normalize(landmarks, sizes, method=normalization, aspect=aspect)
    assert np.isfinite(features).all()


@pytest.mark.parametrize("aspect", [False, True])
def test_onnx_matches_torch_on_random_landmarks(tmp_path: Path, aspect: bool) -> None:
    onnxruntime = pytest.importorskip(
        "onnxruntime", reason="ONNX export needs the export extra: pip install -e '.[export]'"
    )
    pytest.importorskip("onnx", reason="ONNX export needs the export extra")
    from emotion.export.onnx import TOLERANCE, export

    info = export(_checkpoint(tmp_path / "m.ckpt", "nose_unit", aspect), tmp_path / "m.onnx")
    assert info["onnx_bytes"] == (tmp_path / "m.onnx").stat().st_size > 0
    assert info["check"]["max_abs_difference"] <= TOLERANCE == 1e-5
    assert json.loads((tmp_path / "m.json").read_text())["class_names"] == ["neutral", "anxious"]

    trained = load_trained(tmp_path / "m.ckpt")
    session = onnxruntime.InferenceSession(str(tmp_path / "m.onnx"))
    for rows in (1, 7):
        landmarks, sizes = _raw(rows)
        feeds = {"landmarks": landmarks}
        if aspect:
            feeds["image_size"] = sizes.astype(np.float32)
        (got,) = session.run(["probabilities"], feeds)
        expected = trained.probabilities(trained.features(landmarks, sizes)).numpy()
        np.testing.assert_allclose(got, expected, atol=1e-5, rtol=0)


def test_a_fitted_temperature_scales_every_probability(tmp_path: Path) -> None:
    path = _checkpoint(tmp_path / "m.ckpt", "nose_unit", False)
    checkpoint = torch.load(path, weights_only=True)
    checkpoint["temperature"] = 2.5
    torch.save(checkpoint, path)
    trained = load_trained(path)
    assert trained.temperature == 2.5
    landmarks, _ = _raw(8)
    features = trained.features(landmarks, None)
    with torch.no_grad():
        expected = (trained.networks[0](features) / 2.5).softmax(dim=1)
        in_graph = deployable(trained)(torch.from_numpy(landmarks))
    torch.testing.assert_close(trained.probabilities(features), expected)
    torch.testing.assert_close(in_graph, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("normalization", ["procrustes", "procrustes_rigid"])
def test_models_whose_features_cannot_be_made_in_the_graph_are_refused(
    tmp_path: Path, normalization: str
) -> None:
    trained = load_trained(_checkpoint(tmp_path / "m.ckpt", normalization, False))
    with pytest.raises(EmotionError, match="ONNX operator"):
        deployable(trained)


@pytest.mark.parametrize("name", ["model.json", "model.pt2", "model"])
def test_an_output_the_sidecars_would_overwrite_is_refused(tmp_path: Path, name: str) -> None:
    """The .json sidecar and the .pt2 take the output's name: only a .onnx output is safe."""
    from emotion.export.onnx import export

    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", False)
    with pytest.raises(EmotionError, match="must end in .onnx"):
        export(checkpoint, tmp_path / name, with_torch_export=True)
    assert sorted(path.name for path in tmp_path.iterdir()) == ["m.ckpt"]
