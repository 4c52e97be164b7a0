"""emotion-predict on the fixture photo, a video written here, a zip, and bad items."""

from __future__ import annotations

import csv
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from emotion.errors import EmotionError
from tests.trained_run import train_tiny

cv2 = pytest.importorskip("cv2", reason="emotion-predict needs the extract extra (opencv)")
pytest.importorskip("mediapipe", reason="emotion-predict needs the extract extra (mediapipe)")

from emotion.predict.pipeline import predict  # noqa: E402

FACE = Path(__file__).parent / "fixtures" / "astronaut.jpg"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory, tiny_store_path: Path) -> Path:
    run_dir = tmp_path_factory.mktemp("predict") / "run"
    return Path(train_tiny(tiny_store_path, run_dir)["best_checkpoint"])


def _video(path: Path, frames: int, blank: set[int]) -> Path:
    face = cv2.imread(str(FACE))
    height, width = face.shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (width, height))
    for index in range(frames):
        writer.write(np.zeros_like(face) if index in blank else face)
    writer.release()
    return path


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_photo_video_zip_and_bad_items_each_get_rows(checkpoint: Path, tmp_path: Path) -> None:
    video = _video(tmp_path / "clip.avi", frames=6, blank={3})
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.write(FACE, "inner/face.jpg")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"\xff\xd8 not really a jpeg")
    output = tmp_path / "out" / "predictions.csv"

    summary = predict(
        checkpoint,
        [str(FACE), str(video), str(archive), str(broken), str(tmp_path / "missing.png")],
        output,
    )
    rows = _rows(output)
    assert len(rows) == 1 + 6 + 1 + 1 + 1 == summary["rows"]

    photo = next(row for row in rows if row["source"] == str(FACE))
    assert photo["face"] == "True" and photo["status"] == "ok" and photo["frame"] == ""
    assert float(photo["p_neutral"]) + float(photo["p_anxious"]) == pytest.approx(1, abs=1e-5)
    assert photo["label"] in ("neutral", "anxious")

    frames = [row for row in rows if row["source"] == str(video)]
    assert [int(row["frame"]) for row in frames] == list(range(6))
    assert [row["face"] for row in frames] == ["True"] * 3 + ["False"] + ["True"] * 2
    assert frames[3]["status"] == "no_face" and frames[3]["p_anxious"] == ""
    assert frames[3]["smoothed_p_anxious"] == frames[2]["smoothed_p_anxious"]
    assert all(row["smoothed_label"] for row in frames)

    assert any(
        row["source"].endswith("photos.zip::inner/face.jpg") and row["face"] == "True"
        for row in rows
    )
    bad = {row["source"]: row for row in rows if row["status"] == "unreadable"}
    assert set(bad) == {str(broken), str(tmp_path / "missing.png")}
    assert all(row["error"] for row in bad.values())

    saved = json.loads(output.with_name("predictions.csv.summary.json").read_text())
    track = saved["videos"][str(video)]
    assert track["frames"] == 6 and track["frames_with_face"] == 5
    assert track["label"] in ("neutral", "anxious")


def test_jsonl_output_with_a_threshold(checkpoint: Path, tmp_path: Path) -> None:
    output = tmp_path / "p.jsonl"
    predict(checkpoint, [str(FACE)], output, threshold=0.0)
    (row,) = [json.loads(line) for line in output.read_text().splitlines()]
    assert row["face"] is True and row["label"] == "anxious"


def test_nothing_to_predict_is_a_clear_error(checkpoint: Path, tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(EmotionError, match="no photos, videos or zip archives"):
        predict(checkpoint, [str(tmp_path / "empty")], tmp_path / "p.csv")
    with pytest.raises(EmotionError, match="must end in one of"):
        predict(checkpoint, [str(FACE)], tmp_path / "p.txt")


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("batch_size", 0, "--batch-size 0"),
        ("batch_size", -5, "--batch-size -5"),
        ("threads", 0, "--threads 0"),
        ("video_stride", 0, "--video-stride 0"),
        ("threshold", float("nan"), "--threshold nan"),
        ("threshold", 5.0, "--threshold 5.0"),
        ("ema_alpha", 0.0, "--ema-alpha 0.0"),
    ],
)
def test_options_out_of_range_are_refused_before_any_work(
    checkpoint: Path, tmp_path: Path, option: str, value: float, named: str
) -> None:
    """Each would crash later or, for a threshold, label every face the same class."""
    with pytest.raises(EmotionError, match=named):
        predict(checkpoint, [str(FACE)], tmp_path / "p.csv", **{option: value})
    assert not list(tmp_path.iterdir())


def test_an_output_that_is_a_folder_is_refused_before_any_work(
    checkpoint: Path, tmp_path: Path
) -> None:
    folder = tmp_path / "out.csv"
    folder.mkdir()
    with pytest.raises(EmotionError, match="is a folder"):
        predict(checkpoint, [str(FACE)], folder)
    assert list(folder.iterdir()) == []
