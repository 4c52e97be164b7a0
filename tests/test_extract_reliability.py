"""One bad photo never ends an extraction: each failure is counted under a named reason.

Every broken input here is tiny and generated: a zip member that claims 2 GiB is a few bytes
patched in a small archive. FIFOs are guarded by an alarm, so a regression fails instead of
hanging the suite.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from emotion.errors import EmotionError
from emotion.extract import pipeline
from emotion.extract.lock import store_lock
from emotion.extract.pipeline import extract
from emotion.extract.plan import Task
from emotion.extract.settings import ExtractSettings
from emotion.extract.sources import Container, list_members
from emotion.facemesh import runner as facemesh_runner
from emotion.facemesh.decode import TooLarge, decode_upright
from emotion.facemesh.media import Failure, Media, Outcome
from emotion.facemesh.runner import FaceMeshRunner
from emotion.predict.inputs import collect_inputs
from emotion.store.files import partial_path_for
from emotion.store.io import read_store
from tests.extract_tree import (
    FlaggedRawNameInfo,
    astronaut_bytes,
    corrupt_member_data,
    declare_member_size,
    extract_config,
    face_file,
    huge_truncated_jpeg,
)

REPO = Path(__file__).resolve().parents[1]
NEUTRAL_ZIP = "Training/[원천]EMOIMG_중립_TRAIN_01.zip"
ANXIOUS_FOLDER = "Validation/[원천]EMOIMG_불안_VALID"
BAD_NAME = b"p9_\xff\xfe_bad_utf8.jpg"


def settings(root: Path, output: Path, *overrides: str) -> ExtractSettings:
    return ExtractSettings.from_config(extract_config(root, output, *overrides))


@contextmanager
def deadline(seconds: int) -> Iterator[None]:
    """Fail (not hang) when a FIFO is opened by mistake."""

    def expire(number: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s: something opened a FIFO")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def build_hostile_tree(root: Path) -> Path:
    """AI Hub layout. Training zip: two good photos, a 0-byte member, corrupt deflate data, a
    truncated JPEG claiming 20000x20000, a member claiming 2 GiB and a good photo whose
    flagged-UTF-8 name is not UTF-8. Validation folder: a good photo, a 0-byte file, a FIFO,
    a link to it, a broken link, a link to a regular file outside the root, a folder link."""
    training = root / "Training"
    training.mkdir(parents=True)
    archive = training / "[원천]EMOIMG_중립_TRAIN_01.zip"
    face = astronaut_bytes()
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as handle:
        handle.writestr("p1_good.jpg", face)
        handle.writestr("p2_good.jpg", face)
        handle.writestr("p3_empty.jpg", b"")
        handle.writestr("p4_corrupt.jpg", face)
        handle.writestr("p5_huge_header.jpg", huge_truncated_jpeg())
        handle.writestr("p6_two_gib.jpg", face_file("JPEG", size=64))
        handle.writestr(FlaggedRawNameInfo(BAD_NAME), face)
    corrupt_member_data(archive, "p4_corrupt.jpg")
    declare_member_size(archive, "p6_two_gib.jpg", 2**31)
    folder = root / ANXIOUS_FOLDER
    (folder / "sub").mkdir(parents=True)
    (folder / "p7_good.jpg").write_bytes(face)
    (folder / "p7_empty.jpg").write_bytes(b"")
    os.mkfifo(folder / "p7_fifo.jpg")
    (folder / "p7_link_to_fifo.jpg").symlink_to(folder / "p7_fifo.jpg")
    (folder / "p7_broken.jpg").symlink_to(folder / "nothing.jpg")
    outside = root.parent / "passwd"
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (folder / "p7_passwd.jpg").symlink_to(outside)
    (folder / "sub" / "p8_in_sub.jpg").write_bytes(face)
    (folder / "linked_sub").symlink_to(folder / "sub", target_is_directory=True)
    return root


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_hostile_tree(tmp_path_factory.mktemp("hostile") / "data")


def test_every_failure_is_named_and_the_good_photos_are_kept(hostile: Path, tmp_path: Path) -> None:
    with deadline(120):
        report = extract(settings(hostile, tmp_path / "h.h5"))
    problems = {kind: entry["count"] for kind, entry in report["problems"].items()}
    assert problems == {
        "empty_file": 2,
        "corrupt_archive_member": 1,
        "too_large": 2,
        "not_a_regular_file": 3,  # the FIFO, the link to it, the broken link
        "folder_link_not_followed": 1,
        "unsupported_format": 1,  # the link to a regular file is followed: not an image
    }
    examples = report["problems"]["too_large"]["examples"]
    assert any("p5_huge_header.jpg" in e and "20000x20000" in e for e in examples)
    assert any("p6_two_gib.jpg" in e and "decode.max_bytes" in e for e in examples)
    assert "zlib" in report["problems"]["corrupt_archive_member"]["examples"][0]
    store = read_store(tmp_path / "h.h5")
    good = {
        f"{NEUTRAL_ZIP}::p1_good.jpg",
        f"{NEUTRAL_ZIP}::p2_good.jpg",
        f"{NEUTRAL_ZIP}::p9_\ufffd\ufffd_bad_utf8.jpg",  # invalid UTF-8, decoded leniently
        f"{ANXIOUS_FOLDER}/p7_good.jpg",
        f"{ANXIOUS_FOLDER}/sub/p8_in_sub.jpg",
    }
    assert set(store.source) == good and len(store) == len(good)
    neutral = report["archives"][NEUTRAL_ZIP]
    assert (neutral["members"], neutral["faces"], neutral["undecodable"]) == (7, 3, 4)
    anxious = report["archives"][ANXIOUS_FOLDER]
    assert anxious["members"] == 8 and anxious["not_regular_files"] == 4
    assert anxious["sampled"] == anxious["faces"] + anxious["undecodable"] == 2 + 2


class RecordingRunner(FaceMeshRunner):
    """Records the sources it runs; raises KeyboardInterrupt on the `stop_at`-th."""

    ran: list[str] = []
    stop_at: int | None = None

    def run(self, task: Task) -> Outcome:
        RecordingRunner.ran.append(task.source)
        if len(RecordingRunner.ran) == RecordingRunner.stop_at:
            raise KeyboardInterrupt
        return super().run(task)


def test_failures_are_finished_work_a_resume_does_not_retry(
    hostile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    output = tmp_path / "r.h5"
    monkeypatch.setattr(pipeline, "FaceMeshRunner", RecordingRunner)
    RecordingRunner.ran, RecordingRunner.stop_at = [], 11  # the last task, a good photo
    with deadline(120), pytest.raises(KeyboardInterrupt):
        extract(settings(hostile, output, "chunk_tasks=1"))
    RecordingRunner.ran, RecordingRunner.stop_at = [], None
    with deadline(120):
        report = extract(settings(hostile, output, "chunk_tasks=1"))
    assert report["run"]["tasks_resumed"] == 10  # six of them failed: not run again
    assert RecordingRunner.ran == [f"{ANXIOUS_FOLDER}/sub/p8_in_sub.jpg"]
    assert report["problems"]["too_large"]["count"] == 2 and report["rows"] == 5
    RecordingRunner.ran = []
    again = extract(settings(hostile, output, "chunk_tasks=1", "overwrite=true"))
    assert len(RecordingRunner.ran) == 11  # overwrite=true retries everything
    assert again["problems"]["empty_file"]["count"] == 2 and again["rows"] == 5


@pytest.fixture(scope="module")
def runner() -> Iterator[FaceMeshRunner]:
    made = FaceMeshRunner(reduce="auto", video_stride=1, video_max_frames=1)
    yield made
    made.close()


def _file_task(path: Path, video: bool = False) -> Media:
    return Media(str(path), str(path), None, video)


def test_runner_turns_bad_files_into_named_outcomes(
    runner: FaceMeshRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """emotion-predict runs the same FaceMeshRunner: a 0-byte photo is an unreadable row."""
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    os.mkfifo(tmp_path / "fifo.jpg")
    os.mkfifo(tmp_path / "fifo.mp4")
    with deadline(60):
        outcomes = {
            "empty": runner.run(_file_task(empty)),
            "fifo": runner.run(_file_task(tmp_path / "fifo.jpg")),
            "fifo video": runner.run(_file_task(tmp_path / "fifo.mp4", video=True)),
            "missing": runner.run(_file_task(tmp_path / "gone.jpg")),
        }
        big = tmp_path / "big.jpg"
        big.write_bytes(astronaut_bytes())
        monkeypatch.setattr(runner, "max_bytes", 1000)
        outcomes["big"] = runner.run(_file_task(big))
    kinds = {name: outcome.failures[0].problem for name, outcome in outcomes.items()}
    assert kinds == {
        "empty": "empty_file",
        "fifo": "not_a_regular_file",
        "fifo video": "not_a_regular_file",
        "missing": "unreadable_file",
        "big": "too_large",
    }
    assert outcomes["empty"].failures == [Failure(None, "empty_file", "empty file (0 bytes)")]
    assert not any(outcome.faces or outcome.no_face for outcome in outcomes.values())


def test_an_unexpected_error_is_counted_as_failed(
    runner: FaceMeshRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    photo = tmp_path / "p.jpg"
    photo.write_bytes(astronaut_bytes())

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise KeyError("something nobody foresaw")

    monkeypatch.setattr(facemesh_runner, "decode_upright", explode)
    outcome = runner.run(_file_task(photo))
    assert outcome.failures == [Failure(None, "failed", "KeyError: 'something nobody foresaw'")]


def test_pixel_caps_come_before_decoding() -> None:
    with pytest.raises(TooLarge, match="20000x20000"):
        decode_upright(huge_truncated_jpeg(), "auto")
    # Raised above the default, PIL's own bomb check still must not escape as its own error.
    with pytest.raises(TooLarge):
        decode_upright(huge_truncated_jpeg(), "auto", max_pixels=10**9)
    with pytest.raises(TooLarge, match="max_pixels=1000"):
        decode_upright(face_file("PNG"), "auto", max_pixels=1000)  # PNG: PIL reads the header


def test_zip_with_an_invalid_utf8_name_keeps_its_photos(
    runner: FaceMeshRunner, tmp_path: Path
) -> None:
    archive = tmp_path / "photos.zip"
    with zipfile.ZipFile(archive, "w") as handle:
        handle.writestr("a_good.jpg", astronaut_bytes())
        handle.writestr(FlaggedRawNameInfo(BAD_NAME), astronaut_bytes())
        handle.writestr("사람_불안.jpg", astronaut_bytes())  # valid UTF-8, flagged
    with pytest.raises(UnicodeDecodeError):
        zipfile.ZipFile(archive)  # what the standard library does
    members = list_members(Container("photos.zip", archive, "zip", "train"))
    names = [member.name for member in members]
    assert names == ["a_good.jpg", "p9_\ufffd\ufffd_bad_utf8.jpg", "사람_불안.jpg"]
    found = collect_inputs([str(archive)])
    assert len(found.media) == 3 and not found.unreadable
    outcomes = [runner.run(media) for media in found.media]
    assert all(len(outcome.faces) == 1 for outcome in outcomes)


def test_predict_inputs_skip_special_files_and_name_explicit_ones(tmp_path: Path) -> None:
    folder = tmp_path / "photos"
    (folder / "inner").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(b"x")
    (folder / "inner" / "b.jpg").write_bytes(b"x")
    os.mkfifo(folder / "fifo.jpg")
    (folder / "link.jpg").symlink_to(folder / "fifo.jpg")
    (folder / "file_link.jpg").symlink_to(folder / "a.jpg")
    (folder / "loop").symlink_to(folder, target_is_directory=True)
    with deadline(30):
        found = collect_inputs(
            [str(folder), str(folder / "fifo.jpg"), str(folder / "link.jpg"), str(tmp_path / "no")]
        )
    assert [media.source for media in found.media] == [
        str(folder / "a.jpg"),
        str(folder / "file_link.jpg"),
        str(folder / "inner" / "b.jpg"),
    ]
    why = dict(found.unreadable)
    assert why[str(folder / "fifo.jpg")].startswith("not a regular file")
    assert why[str(folder / "link.jpg")].startswith("not a regular file")
    assert why[str(tmp_path / "no")] == "no such file or folder"


def test_plain_folders_count_special_files(tmp_path: Path) -> None:
    root = tmp_path / "photos"
    (root / "neutral").mkdir(parents=True)
    (root / "neutral" / "p1_good.jpg").write_bytes(face_file("JPEG"))
    os.mkfifo(root / "neutral" / "p1_fifo.jpg")
    (root / "neutral" / "p1_link.jpg").symlink_to(root / "neutral" / "p1_fifo.jpg")
    (root / "anxious").symlink_to(root / "neutral", target_is_directory=True)
    with deadline(120):
        report = extract(settings(root, tmp_path / "f.h5"))
    assert report["rows"] == 1
    assert report["problems"]["not_a_regular_file"]["count"] == 2
    assert report["problems"]["folder_link_not_followed"]["examples"] == ["anxious"]
    assert report["archives"]["neutral"]["not_regular_files"] == 2


def test_a_second_run_to_the_same_output_is_refused(
    hostile: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The second run must not even open the first one's `.partial` (mode "w" truncates)."""
    output = tmp_path / "locked.h5"
    monkeypatch.setattr(pipeline, "FaceMeshRunner", RecordingRunner)
    RecordingRunner.ran, RecordingRunner.stop_at = [], 4
    with deadline(120), pytest.raises(KeyboardInterrupt):
        extract(settings(hostile, output, "chunk_tasks=1"))
    monkeypatch.undo()
    partial = partial_path_for(output)
    before = (partial.read_bytes(), partial.stat().st_mtime_ns)
    command = [sys.executable, "-m", "emotion.extract.app", f"source.root={hostile}"]
    command += [f"output={output}", "progress=none", "chunk_tasks=1"]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    with store_lock(output, "emotion-extract"):  # as the first run holds it
        second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, timeout=120)
        with pytest.raises(EmotionError, match=f"another emotion-extract \\(pid {os.getpid()}\\)"):
            extract(settings(hostile, output, "chunk_tasks=1"))
    stderr = second.stderr.decode()
    assert second.returncode == 2, stderr[-3000:]
    assert "error:" in stderr and "fix:" in stderr
    assert f"being written by another emotion-extract (pid {os.getpid()})" in stderr
    assert (partial.read_bytes(), partial.stat().st_mtime_ns) == before
    with deadline(120):
        report = extract(settings(hostile, output, "chunk_tasks=1"))  # the lock is free again
    assert report["run"]["tasks_resumed"] == 3 and report["rows"] == 5
