"""The extraction benchmark: its legacy side (a side environment's script), its video, and a
whole run on the tiny AI Hub-style tree (slow), all on the astronaut fixture, never ../shared."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from emotion.bench import extract as bench
from emotion.bench.extract_legacy import (
    DEFAULT_LEGACY_PYTHON,
    LEGACY_PYTHON_ENV,
    SCRIPT,
    check_legacy,
)
from emotion.bench.extract_rounds import METHODS
from emotion.bench.extract_video import video_photo, write_video
from emotion.facemesh.decode import decode_upright
from emotion.facemesh.landmarker import VIDEO, Landmarker
from tests.commands import emotion
from tests.extract_tree import FIXTURE, build_aihub_tree


def _side_python() -> Path | None:
    """A side environment with mediapipe 0.10.21 where this machine has one, else None."""
    python = Path(os.environ.get(LEGACY_PYTHON_ENV) or DEFAULT_LEGACY_PYTHON)
    side = check_legacy(python)
    return None if side.skipped else python


def test_the_legacy_script_refuses_a_python_without_mediapipe_0_10_21() -> None:
    # This environment has the new mediapipe: the script says what to make, exit status 2.
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--check"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    error, fix = done.stderr.strip().splitlines()
    assert error.startswith("error: ") and "needs mediapipe 0.10.21" in error
    assert fix.startswith("fix: ") and "pip install mediapipe==0.10.21" in fix


def test_the_legacy_script_imports_nothing_of_ours() -> None:
    # The side environment holds mediapipe 0.10.21 alone: `emotion` must not be needed there.
    source = SCRIPT.read_text(encoding="utf-8")
    assert "import emotion" not in source and "from emotion" not in source
    assert "mp" + ".solutions" not in source


def test_a_missing_or_wrong_legacy_python_is_recorded_as_skipped_with_the_reason(
    tmp_path: Path,
) -> None:
    missing = check_legacy(tmp_path / "no-venv" / "bin" / "python")
    assert missing.skipped is not None and "no python at" in missing.skipped
    assert "pip install mediapipe==0.10.21" in missing.skipped
    wrong = check_legacy(Path(sys.executable))
    assert wrong.skipped is not None and "needs mediapipe 0.10.21" in wrong.skipped


def test_the_legacy_graph_sees_the_pixels_the_extractor_decodes() -> None:
    python = _side_python()
    if python is None:
        pytest.skip(f"no side environment with mediapipe 0.10.21 (${LEGACY_PYTHON_ENV})")
    line = json.dumps({"path": str(FIXTURE), "member": None, "reduce": 2}) + "\n"
    done = subprocess.run(
        [str(python), str(SCRIPT), "--warmup", "1", "--landmarks", "--digests"],
        input=line,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    rgb, _ = decode_upright(FIXTURE.read_bytes(), 2)
    assert result["pixel_sha256"] == [hashlib.sha256(rgb.tobytes()).hexdigest()]
    assert result["faces_found"] == [1]
    assert len(result["landmarks"][0]) == 478 and result["seconds"] > 0


def test_the_benchmark_video_moves_a_real_face_that_video_mode_tracks(tmp_path: Path) -> None:
    import cv2

    rgb = video_photo([FIXTURE.read_bytes()])
    assert rgb is not None
    path = tmp_path / "moving.avi"
    made = write_video(rgb, path, frames=12)
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
    capture.release()
    assert len(frames) == made["frames"] == 12
    assert frames[0].shape == (480, 640, 3)
    tracker = Landmarker(VIDEO)
    noses = []
    for index, frame in enumerate(frames):
        reading, _ = tracker.find(frame, round(index * 1000 / made["fps"]))
        assert reading is not None
        noses.append(reading.landmarks[1, :2] * (640, 480))
    tracker.close()
    steps = [abs(b - a).max() for a, b in zip(noses, noses[1:], strict=False)]
    assert 0.5 < max(steps) < 3 * made["max_px_per_frame"]  # moves, a few pixels a frame


def test_without_the_sample_the_benchmark_skips_with_a_message(tmp_path: Path) -> None:
    done = emotion("emotion.bench", "extract", "--root", str(tmp_path / "absent"), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("skipped: no AI Hub-layout photos at")
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow
def test_bench_extract_writes_every_figure_and_target(tmp_path: Path) -> None:
    tree = build_aihub_tree(tmp_path / "aihub")
    output = tmp_path / "extract.json"
    common = ["--root", str(tree.root), "--rounds", "1", "--copies", "1", "--workers", "1"]
    common += ["--video-frames", "8", "--legacy-python", str(tmp_path / "none" / "python")]
    bench.main([*common, "--output", str(output)])
    result = json.loads(output.read_text())
    assert set(result["per_worker"]) == {"legacy_facemesh", *METHODS}
    assert "no python at" in result["per_worker"]["legacy_facemesh"]["skipped"]
    assert "no python at" in result["legacy"]["skipped"]
    assert result["per_worker"]["extractor_reduce_auto"]["x_bare_loop"] > 0
    assert result["synthetic_upscale"] is None
    assert len(result["machine"]["load_average_at_start"]) == 3
    assert result["landmark_tolerance"]["reduce_auto"]["faces_compared"] > 0
    video = result["video_vs_image_mode"]
    assert video["video"]["frames"] == 8 and video["video_mode"]["faces"] == 8
    assert video["video_mode"]["x_image_mode"] > 0
    assert video["video_vs_image_landmarks"]["faces_compared"] == 8
    targets = result["targets"]
    assert set(targets) == {
        "default_decode_within_landmark_tolerance",
        "per_worker_at_least_1.0x_legacy",
        "per_worker_not_slower_than_bare_loop",
        "video_mode_at_least_1.5x_image_mode",
        "steady_scaling_at_least_1.8",
    }
    assert targets["per_worker_at_least_1.0x_legacy"] is None  # not measured: no side venv
    assert targets["steady_scaling_at_least_1.8"] is False  # one worker count only

    upscaled = tmp_path / "upscaled.json"
    bench.main([*common, "--upscale", "1024x768", "--output", str(upscaled)])
    result = json.loads(upscaled.read_text())
    assert result["synthetic_upscale"] == "1024x768"
    assert set(result["photo_sizes"]) <= {"1024x768 (auto 1/1)", "768x1024 (auto 1/1)"}
