"""The one rest-face `Reference` and the model's reference policy (issue 26's groundwork).

Training's per-person means, a served session's running sum and the exported graph's torch
mean are held to one another; a `data.baseline=session` model is served against the faces of
its session, as `emotion-predict --baseline session` reads them, never against an enrolled
rest face; and whether a model saw only synthetic faces is read once, when it is loaded.
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from emotion.checkpoint import DATA_SETTINGS_KEY, section
from emotion.features.baseline import session_references
from emotion.features.preprocessing import Preprocessing
from emotion.features.reference import Reference, torch_mean
from emotion.inference.ensemble import load_model
from tests.commands import emotion
from tests.serving import post, served


def faces(count: int, seed: int = 0) -> np.ndarray:
    """`count` face vectors (a landmark model's: 478 x 3 points, flattened)."""
    return np.random.default_rng(seed).normal(size=(count, 478 * 3)).astype(np.float32)


def test_training_session_means_equal_a_reference_built_face_by_face() -> None:
    """Training's whole-stage path and a served session's running sum agree on the same rows."""
    points = faces(9)
    subject = np.array(list("AAAABBBBC"))
    found = session_references(points, subject, np.arange(9))
    assert found.unscored == ["C"]  # one face is no session
    for person in ("A", "B"):
        online = Reference(how="session")
        for face in points[subject == person]:
            online.add(face)  # one at a time, as a session sees them
        assert online.count == 4
        np.testing.assert_allclose(online.mean(), found.faces[person], atol=1e-6)
        np.testing.assert_allclose(
            online.mean(), points[subject == person].astype(np.float64).mean(0), atol=1e-6
        )


def test_merging_adds_or_replaces_and_an_empty_reference_changes_nothing() -> None:
    points = faces(5, seed=1)
    kept = Reference.of(points[:2], how="enrolled")
    kept.merge(Reference.of(points[2:]))
    np.testing.assert_allclose(kept.mean(), Reference.of(points).mean(), atol=1e-6)
    kept.merge(Reference())
    assert kept.count == 5
    kept.merge(Reference.of(points[4:]), replace=True)
    assert kept.count == 1 and np.array_equal(kept.mean(), points[4])
    assert Reference().mean() is None


def test_the_graphs_torch_mean_is_the_references_and_nan_without_faces() -> None:
    points = faces(3, seed=2)
    mean, count = torch_mean(torch.from_numpy(points)[None])
    assert count.tolist() == [[3.0]]
    np.testing.assert_allclose(mean[0].numpy(), Reference.of(points).mean(), atol=1e-6)
    empty, _ = torch_mean(torch.zeros(1, 0, 478 * 3))
    assert torch.isnan(empty).all()


def test_the_baseline_mode_is_a_policy_of_the_model() -> None:
    session = Preprocessing(baseline="session").reference_policy
    enrolled = Preprocessing(baseline="enrolled").reference_policy
    plain = Preprocessing().reference_policy
    assert (session.counts_scored_faces, session.min_faces, session.default_how) == (
        True,
        2,
        "session",
    )
    assert (enrolled.counts_scored_faces, enrolled.min_faces, enrolled.default_how) == (
        False,
        1,
        "none",
    )
    assert enrolled.needs_reference and not plain.needs_reference


def test_trained_on_synthetic_is_read_once_when_loaded(synthetic_run, tmp_path: Path) -> None:
    """An older checkpoint (no record) says so through metrics.json; the answer is kept from
    the load, not re-read (and changed) on every request."""
    run = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run)
    for path in (run / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
        del section(checkpoint, DATA_SETTINGS_KEY)["synthetic"]  # as written before it was
        torch.save(checkpoint, path)
    model = load_model(str(run))
    assert model.trained_on_synthetic is True
    metrics = json.loads((run / "metrics.json").read_text())
    (run / "metrics.json").write_text(json.dumps({**metrics, "synthetic_data": False}))
    assert model.trained_on_synthetic is True


@pytest.fixture(scope="module")
def session_run(photo_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny data.baseline=session run on the photo store."""
    from tests.trained_run import train_tiny

    run_dir = tmp_path_factory.mktemp("session") / "run"
    train_tiny(photo_store[1], run_dir, "data.baseline=session", "data.min_val_subjects=10")
    return run_dir


def predicted_session(run: Path, files: list[Path], tmp_path: Path) -> dict[str, dict]:
    """emotion-predict --baseline session's rows for these photos, by file name."""
    output = tmp_path / f"rows{len(files)}.csv"
    done = emotion(
        "emotion.predict",
        str(run),
        *map(str, files),
        "--baseline",
        "session",
        "-o",
        str(output),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    return {Path(row["source"]).name: row for row in csv.DictReader(output.open())}


@pytest.mark.slow
def test_a_session_model_is_served_against_its_sessions_faces(
    session_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    """Each face posted to a session (or streamed) joins its reference, then is read against
    the mean of the faces seen so far: what emotion-predict --baseline session gives those
    photos."""
    connect = pytest.importorskip("websockets.sync.client", reason="the serve extra").connect
    files = sorted((photo_store[0] / "test").rglob("*.jpg"))[:3]
    expected = [predicted_session(session_run, files[:count], tmp_path) for count in (2, 3)]
    with served(session_run) as server:
        status, alone = post(f"{server.base}/v1/predict", files[0].read_bytes())
        assert status == 409 and "POST /v1/sessions" in alone["fix"]
        status, created = post(f"{server.base}/v1/sessions", b"")
        assert status == 201
        url = f"{server.base}/v1/sessions/{created['id']}/predict"
        status, first = post(url, files[0].read_bytes())
        assert status == 409 and "counted" in first["fix"]  # one face is no reference yet
        for count, rows in zip((2, 3), expected, strict=True):
            status, answer = post(url, files[count - 1].read_bytes())
            assert status == 200, answer
            row = rows[files[count - 1].name]
            assert answer["reference"].endswith(f"mean of {count} faces seen")
            for name, value in answer["probabilities"].items():
                assert value == pytest.approx(float(row[f"p_{name}"]), abs=1e-6), name
            assert answer["label"] == row["label"]
        with connect(f"ws://127.0.0.1:{server.port}/v1/stream") as socket:  # its own session
            frames = []
            for path in files:
                socket.send(path.read_bytes())
                frames.append(json.loads(socket.recv(timeout=60)))
        assert frames[0]["status"] == "no_reference" and frames[0]["score"] is None
        for count, rows in zip((2, 3), expected, strict=True):
            frame, row = frames[count - 1], rows[files[count - 1].name]
            assert frame["status"] == "ok" and frame["enrolled"] == count
            for name, value in frame["probabilities"].items():
                assert value == pytest.approx(float(row[f"p_{name}"]), abs=1e-6), name
