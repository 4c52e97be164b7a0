"""emotion-predict under faults and bad input: two runs to one output, a planted link, enrolment
photos that are missing, unreadable or faceless, a reader that stops early, an output folder
that cannot be written, and a long video (docs/reliability.md)."""

from __future__ import annotations

import csv
import io
import os
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from tests.commands import ROOT, emotion, unwritable

cv2 = pytest.importorskip("cv2", reason="emotion-predict needs the extract extra (opencv)")
pytest.importorskip("mediapipe", reason="emotion-predict needs the extract extra (mediapipe)")

from emotion.predict.pipeline import predict  # noqa: E402
from emotion.predict.writer import RowWriter  # noqa: E402

FACE = Path(__file__).parent / "fixtures" / "astronaut.jpg"
NAMES = ["neutral", "anxious"]


def write_video(path: Path, frames: int, size: int = 256) -> Path:
    """`frames` frames of the fixture face (an MJPG .avi at 10 fps)."""
    face = cv2.resize(cv2.imread(str(FACE)), (size, size))
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (size, size))
    for _ in range(frames):
        writer.write(face)
    writer.release()
    return path


def rows_of(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def partials(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.endswith(".partial"))


def test_two_writers_to_one_output_never_share_a_file(tmp_path: Path) -> None:
    """The second no longer truncates the first's `<file>.partial`, nor does the first crash
    when the second renamed it: each publishes its own rows whole, the last one wins."""
    output = tmp_path / "p.csv"
    first = RowWriter(output, NAMES, ".csv")
    second = RowWriter(output, NAMES, ".csv")
    first.write({"source": "first-1"})
    second.write({"source": "second-1"})
    first.write({"source": "first-2"})
    second.finish()
    assert [row["source"] for row in rows_of(output)] == ["second-1"]
    first.finish()
    assert [row["source"] for row in rows_of(output)] == ["first-1", "first-2"]
    assert partials(tmp_path) == []


def test_a_failed_run_leaves_no_temporary_file(tmp_path: Path) -> None:
    output = tmp_path / "p.csv"
    with pytest.raises(RuntimeError), RowWriter(output, NAMES, ".csv") as writer:
        writer.write({"source": "half"})
        raise RuntimeError("the run stops")
    assert list(tmp_path.iterdir()) == []


def test_a_link_at_the_temporary_name_is_never_followed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A link planted at the name the writer picks is refused (O_EXCL), and another name is
    taken; one at the old fixed `<file>.partial` is left alone."""
    import emotion.rundir as rundir

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    output = tmp_path / "p.csv"
    planted = tmp_path / "p.csv.partial"
    planted.symlink_to(victim)
    names = iter([planted, tmp_path / "p.csv.1.free.partial"])
    monkeypatch.setattr(rundir, "fresh_name", lambda path, suffix: next(names))
    with RowWriter(output, NAMES, ".csv") as writer:
        writer.write({"source": "row"})
        writer.finish()
    assert victim.read_text() == "precious\n" and planted.is_symlink()
    assert not output.is_symlink() and [row["source"] for row in rows_of(output)] == ["row"]


def test_predict_does_not_write_through_a_link_planted_at_the_old_partial_name(
    synthetic_run, tmp_path: Path
) -> None:
    run_dir, _ = synthetic_run
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    output = tmp_path / "p.csv"
    (tmp_path / "p.csv.partial").symlink_to(victim)
    predict(run_dir, [str(FACE)], output)
    assert victim.read_text() == "precious\n"
    assert not output.is_symlink() and rows_of(output)[0]["face"] == "True"


@pytest.mark.slow
def test_two_predict_commands_to_one_output_both_finish_and_the_last_wins(
    synthetic_run, tmp_path: Path
) -> None:
    """The first is paused while its rows are being written; the second runs to the end, then
    the first finishes: before, the second truncated the first's `<file>.partial` and the
    first died on renaming it (FileNotFoundError), leaving a file of both runs' rows."""
    run_dir, _ = synthetic_run
    video = write_video(tmp_path / "clip.avi", 300)
    output = tmp_path / "out" / "p.csv"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    command = [sys.executable, "-m", "emotion.predict", str(run_dir), str(video)]
    first = subprocess.Popen(
        [*command, "-o", str(output), "--batch-size", "4"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not (output.parent.is_dir() and partials(output.parent)):
            assert first.poll() is None, first.communicate()[1][-2000:]
            assert time.monotonic() < deadline, "the first run never started writing"
            time.sleep(0.01)
        first.send_signal(signal.SIGSTOP)
        second = emotion(
            "emotion.predict", str(run_dir), str(FACE), "-o", str(output), cwd=tmp_path
        )
        assert second.returncode == 0, second.stderr[-2000:]
        assert [row["source"] for row in rows_of(output)] == [str(FACE)]
    finally:
        first.send_signal(signal.SIGCONT)
    _, stderr = first.communicate(timeout=300)
    assert first.returncode == 0, stderr[-2000:]
    assert "Traceback" not in stderr
    rows = rows_of(output)
    assert [row["frame"] for row in rows] == [str(frame) for frame in range(300)]
    assert {row["source"] for row in rows} == {str(video)}
    assert partials(output.parent) == []


@pytest.mark.slow
def test_a_missing_enrollment_photo_is_an_error_before_any_prediction(
    enrolled_run: Path, tmp_path: Path
) -> None:
    """It was dropped without a word, while the `reference` column named it."""
    missing = tmp_path / "missing.jpg"
    output = tmp_path / "p.csv"
    done = emotion(
        "emotion.predict",
        str(enrolled_run),
        str(FACE),
        "--enroll",
        str(FACE),
        str(missing),
        "-o",
        str(output),
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("error:") == 1 and "fix:" in done.stderr
    assert f"{missing}: no such file or folder" in done.stderr and "Traceback" not in done.stderr
    assert "wrote" not in done.stderr and not output.exists() and partials(tmp_path) == []


def _photo(path: Path, data: bytes) -> str:
    path.write_bytes(data)
    return str(path)


def _blank_jpeg() -> bytes:
    ok, data = cv2.imencode(".jpg", np.full((480, 640, 3), 128, dtype=np.uint8))
    assert ok
    return data.tobytes()


@pytest.mark.parametrize(
    ("kind", "said"),
    [("faceless", "shows no face FaceMesh finds"), ("broken", "cannot be read")],
)
def test_an_enrollment_photo_without_a_face_or_unreadable_is_named(
    enrolled_run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    kind: str,
    said: str,
) -> None:
    """`emotion-predict`'s own main in this process (the exit status as a subprocess is
    checked above): each bad photo is named with what is wrong with it, distinct from a
    missing one; before, a photo that showed no face was dropped when another showed one."""
    from emotion.predict.app import main

    data = _blank_jpeg() if kind == "faceless" else b"\xff\xd8 not really a jpeg"
    bad = _photo(tmp_path / f"{kind}.jpg", data)
    output = tmp_path / "p.csv"
    with pytest.raises(SystemExit) as stopped:
        main([str(enrolled_run), str(FACE), "--enroll", str(FACE), bad, "-o", str(output)])
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2, stderr
    assert f"{bad} {said}" in stderr and "no such file" not in stderr
    assert stderr.count("error:") == 1 and "fix:" in stderr
    assert not output.exists()


@pytest.mark.slow
def test_a_reader_that_stops_early_ends_the_command_quietly(synthetic_run, tmp_path: Path) -> None:
    """`emotion-predict RUN inputs | head -3`: a BrokenPipeError traceback (exit 1) before;
    now the status a shell gives a command SIGPIPE ended, 141, and nothing on stderr but the
    usual warning. 600 undecodable photos make rows enough to fill the pipe."""
    run_dir, _ = synthetic_run
    folder = tmp_path / "photos"
    folder.mkdir()
    for number in range(600):
        (folder / f"broken_{number:04d}_{'x' * 40}.jpg").write_bytes(b"not a jpeg")
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    reader = subprocess.Popen(
        [sys.executable, "-m", "emotion.predict", str(run_dir), str(FACE), str(folder)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert reader.stdout is not None and reader.stderr is not None
    head = [reader.stdout.readline() for _ in range(3)]
    reader.stdout.close()  # as `head -3` exits
    stderr = reader.stderr.read().decode()
    reader.wait(timeout=300)
    assert head[0].startswith(b"source,frame,face,faces,status") and len(head[2]) > 0
    assert reader.returncode == 128 + signal.SIGPIPE, stderr[-2000:]
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert "error:" not in stderr and "wrote" not in stderr


def test_an_output_folder_that_cannot_be_written_is_refused_before_any_work(
    synthetic_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A traceback (PermissionError, or NotADirectoryError) after the model was loaded and
    FaceMesh had started, before; now error:/fix: naming the output, exit 2."""
    from emotion.predict.app import main

    run_dir, _ = synthetic_run
    output = unwritable(tmp_path) / "p.csv"
    with pytest.raises(SystemExit) as stopped:
        main([str(run_dir), str(FACE), "-o", str(output)])
    stderr = capsys.readouterr().err
    assert stopped.value.code == 2, stderr
    assert f"cannot write -o {output}" in stderr and "fix:" in stderr
    assert stderr.count("error:") == 1
    assert "SYNTHETIC" not in stderr, "refused before the model was loaded"


def test_a_long_video_is_read_in_bounded_memory(synthetic_run, tmp_path: Path) -> None:
    """Frames are read, scored and written a batch at a time: four times the frames, the same
    peak (Python's allocations, numpy's arrays among them). Every frame was held before,
    about 20 KB each: 2 GB at the default --video-max-frames."""
    run_dir, _ = synthetic_run
    predict(run_dir, [str(write_video(tmp_path / "warm.avi", 4))], tmp_path / "warm.csv")
    peaks = {}
    for frames in (60, 240):
        video = write_video(tmp_path / f"clip{frames}.avi", frames)
        output = tmp_path / f"p{frames}.csv"
        tracemalloc.start()
        try:
            summary = predict(run_dir, [str(video)], output, batch_size=8)
            peaks[frames] = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert summary["frames"] == frames and summary["faces"] == frames
        assert len(rows_of(output)) == frames
    grown = peaks[240] - peaks[60]
    assert grown < 0.5 * 2**20, f"the peak grew {grown / 2**20:.2f} MiB for 180 more frames"


def _varied_video(path: Path, frames: int) -> Path:
    """The photo store's faces, moved a little frame by frame, and two frames without one."""
    from PIL import Image

    from tests.photo_runs import face_photo

    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (640, 480))
    for index in range(frames):
        if index in (5, 17):
            writer.write(np.full((480, 640, 3), 128, dtype=np.uint8))
            continue
        photo = face_photo(0.8 + 0.01 * (index % 7), (40 + index, 20 + 3 * (index % 5)))
        rgb = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
        writer.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


@pytest.mark.parametrize("baseline", ["first:1s", "session"])
def test_a_video_read_in_batches_gives_the_rows_it_gives_in_one_piece(
    enrolled_run: Path, tmp_path: Path, baseline: str
) -> None:
    """The first seconds' reference and a session's mean face need frames from across the
    video: held back (first) or parked on disk (session) until known, the same either way."""
    video = _varied_video(tmp_path / "clip.avi", 30)
    rows = {}
    for batch in (3, 256):
        output = tmp_path / f"p{batch}.csv"
        predict(
            enrolled_run,
            [str(video), str(FACE), str(video)],
            output,
            batch_size=batch,
            baseline=baseline,
        )
        rows[batch] = rows_of(output)
    assert len(rows[3]) == len(rows[256]) == 61
    for small, whole in zip(rows[3], rows[256], strict=True):
        for key in ("source", "frame", "status", "reference", "label"):
            assert small[key] == whole[key], (key, small, whole)
        for key in ("p_anxious", "smoothed_p_anxious"):
            if whole[key]:
                assert float(small[key]) == pytest.approx(float(whole[key]), abs=1e-5)
    statuses = [row["status"] for row in rows[256]]
    assert statuses.count("no_face") == 4 and "ok" in statuses
    assert ("reference" in statuses) == (baseline == "first:1s")
