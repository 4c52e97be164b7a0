"""`python -m emotion.bench live` end to end on a tiny tree in AI Hub's layout, as CI runs it
on the real-face sample: the page calibrates, scores two more faces, and agrees with the
Python API on them. Here the "person" is the astronaut fixture, and the "anxious" photo is
the same face stretched (a SYNTHETIC change, not an expression): what this test checks is the
machinery, not what a model reads in a real face (results.md has that check's figures)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emotion.bench.live import CHROMEDRIVER, CHROMIUM, VENDOR
from tests.commands import emotion
from tests.extract_tree import PERSON_A, write_zip
from tests.photo_runs import face_photo

pytest.importorskip("selenium", reason="the live check drives Chromium with selenium")
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists() and VENDOR.exists()),
        reason="needs Debian's chromium and chromedriver and the vendored runtime (make setup)",
    ),
]


def aihub_tree(root: Path) -> Path:
    """One person: two neutral photos (the face a little moved) and one stretched face."""
    training = root / "Training"
    training.mkdir(parents=True)
    neutral = {
        f"{PERSON_A}_1.jpg": face_photo(0.8, (60, 20)),
        f"{PERSON_A}_2.jpg": face_photo(0.82, (70, 25)),
    }
    write_zip(training / "[원천]EMOIMG_중립_TRAIN_01.zip", neutral, cp949=True)
    anxious = {f"{PERSON_A}_3.jpg": face_photo(0.8, (60, 10), stretch=1.2)}
    write_zip(training / "[원천]EMOIMG_불안_TRAIN_01.zip", anxious, cp949=True)
    return root


def test_the_live_check_calibrates_scores_and_agrees_with_the_api(
    enrolled_run: Path, plain_run: Path, tmp_path: Path
) -> None:
    root = aihub_tree(tmp_path / "photos")
    output = tmp_path / "live.json"
    done = emotion(
        "emotion.bench", "live", "--root", str(root), "--run", str(enrolled_run),
        "--plain", str(plain_run), "--seconds", "1.5", "--output", str(output), cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "live page, after calibration" in done.stdout
    result = json.loads(output.read_text())
    assert result["people"] == 1 and len(result["load_average_at_start"]) == 3
    row = result["rows"][0]
    assert row["sources"]["rest"].endswith(f"{PERSON_A}_1.jpg")
    assert row["sources"]["neutral"].endswith(f"{PERSON_A}_2.jpg")
    page, api = row["page_after_calibration"], row["api_after_calibration"]
    for face in ("neutral", "anxious"):
        assert page[face] is not None and abs(page[face] - api[face]) < 0.05, (page, api)
    assert row["moved"] == pytest.approx(page["anxious"] - page["neutral"])
    assert set(row["plain_model"]) == {"neutral", "anxious"}
    target = result["targets"]["anxious_above_neutral_for_most_people"]
    assert target["met"] == (row["moved"] > 0)


def test_the_live_check_skips_without_photos_and_refuses_a_missing_run(tmp_path: Path) -> None:
    skipped = emotion("emotion.bench", "live", "--root", str(tmp_path / "absent"), cwd=tmp_path)
    assert skipped.returncode == 0 and skipped.stdout.startswith("skipped: no AI Hub-layout")
    root = aihub_tree(tmp_path / "photos")
    refused = emotion("emotion.bench", "live", "--root", str(root), cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "error: no run at outputs/train/runs/live" in refused.stderr
    assert "fix: make live first" in refused.stderr
    assert not (tmp_path / "outputs").exists()
