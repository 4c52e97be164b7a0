"""Faults around `emotion-extract`: a worker killed mid-run, a disk that fills up, a damaged
`.partial`, links planted beside the output, an output that cannot be written.

Every run is a real `emotion-extract` subprocess (or `extract` in this process where a fault
is injected) on a tiny tree of the astronaut fixture; nothing reads ../shared.
"""

from __future__ import annotations

import json
import os
import resource
import shlex
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from emotion.errors import EmotionError
from emotion.extract import pipeline
from emotion.extract.pipeline import extract
from emotion.extract.settings import ExtractSettings, report_path
from emotion.store import writer as store_writer
from emotion.store.files import partial_path_for
from emotion.store.io import read_store
from tests.commands import ROOT, emotion
from tests.extract_tree import (
    InterruptingRunner,
    build_aihub_tree,
    extract_config,
    face_file,
)

PHOTOS = 300  # enough that two workers are still busy when one is killed


def settings(root: Path, output: Path, *overrides: str) -> ExtractSettings:
    return ExtractSettings.from_config(extract_config(root, output, *overrides))


def build_photo_folders(root: Path, count: int) -> list[str]:
    """neutral/ and anxious/ folders of small astronaut photos (five people); the sources in
    task order (folders, then files, by name)."""
    photo = face_file("JPEG", size=160)
    names = [f"p{number % 5}_{number:04d}.jpg" for number in range(count // 2)]
    for folder in ("neutral", "anxious"):
        (root / folder).mkdir(parents=True)
        for name in names:
            (root / folder / name).write_bytes(photo)
    return [f"{folder}/{name}" for folder in ("anxious", "neutral") for name in sorted(names)]


@pytest.fixture(scope="module")
def photos(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("photos") / "tree"
    return root, build_photo_folders(root, PHOTOS)


def extract_args(root: Path, output: Path, *overrides: str) -> list[str]:
    return [f"source.root={root}", f"output={output}", "progress=none", *overrides]


def environment() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


def assert_user_error(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    """Exit 2, one `error:` and one `fix:`, no traceback, and the phrases in the message."""
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count("error:") == 1 and done.stderr.count("fix:") == 1, done.stderr
    assert "Traceback" not in done.stderr, done.stderr[-3000:]
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr[-3000:]


def assert_complete(output: Path, sources: list[str]) -> dict[str, Any]:
    """Every photo exactly once, in task order, in a store that reads and validates."""
    store = read_store(output)
    assert list(store.source) == sources
    return json.loads(report_path(output).read_text(encoding="utf-8"))


# A worker killed mid-run (kill -9, the OOM killer).


def worker_pids(parent: int) -> list[int]:
    """The parent's spawned pool workers (not multiprocessing's resource tracker)."""
    found = []
    for listing in Path(f"/proc/{parent}/task").glob("*/children"):
        try:
            found += [int(pid) for pid in listing.read_text().split()]
        except OSError:
            continue
    workers = []
    for pid in found:
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"spawn_main" in command:
            workers.append(pid)
    return workers


def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> Any:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"not within {seconds} s: {what}")


@pytest.fixture
def process_group() -> Iterator[list[subprocess.Popen[str]]]:
    """Popen'ed runs, killed with their workers if a test leaves one behind (a hang)."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.mark.slow
def test_a_killed_worker_ends_the_run_with_an_error_and_a_rerun_resumes(
    photos: tuple[Path, list[str]],
    tmp_path: Path,
    process_group: list[subprocess.Popen[str]],
) -> None:
    root, sources = photos
    output = tmp_path / "killed.h5"
    args = extract_args(root, output, "workers=2", "chunk_tasks=4")
    run = subprocess.Popen(
        [sys.executable, "-m", "emotion.extract.app", *args],
        cwd=tmp_path,
        env=environment(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    process_group.append(run)
    partial = partial_path_for(output)
    workers = wait_for(lambda: len(worker_pids(run.pid)) == 2, 120, "two workers started")
    workers = worker_pids(run.pid)
    before = partial.stat().st_size  # the workers start only after the .partial is made
    wait_for(lambda: partial.stat().st_size > before, 120, "a first checkpoint with rows")
    assert run.poll() is None, "the run ended before a worker could be killed"
    os.kill(workers[0], signal.SIGKILL)
    try:
        _, stderr = run.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        pytest.fail("the run still waits 60 s after one of its workers was killed")
    done = subprocess.CompletedProcess(run.args, run.returncode, "", stderr)
    assert_user_error(done, "worker process died", "rerun the same command")
    assert partial.exists() and not output.exists()
    again = emotion("emotion.extract.app", *args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    report = assert_complete(output, sources)
    assert 0 < report["run"]["tasks_resumed"] < PHOTOS


# A disk that fills up, a file size limit, a damaged .partial.


def limit_file_size(limit: int) -> Callable[[], None]:
    def apply() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.slow
def test_a_write_past_a_size_limit_is_an_error_and_a_rerun_resumes(
    photos: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """RLIMIT_FSIZE makes the kernel refuse the write (EFBIG) as a full disk does (ENOSPC),
    without root: HDF5 fails mid-write and, before, crashed (SIGSEGV) on its way out."""
    root, sources = photos
    output = tmp_path / "limited.h5"
    args = extract_args(root, output, "chunk_tasks=16")
    command = [sys.executable, "-m", "emotion.extract.app", *args]
    limited = subprocess.run(
        command,
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=limit_file_size(200_000),
    )
    assert_user_error(limited, "size limit", "nothing written after it counts as done")
    assert partial_path_for(output).exists() and not output.exists()
    again = emotion("emotion.extract.app", *args, cwd=tmp_path, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    report = assert_complete(output, sources)
    assert report["run"]["tasks_resumed"] > 0


def can_mount_tmpfs() -> bool:
    if shutil.which("unshare") is None:
        return False
    probe = subprocess.run(
        ["unshare", "--mount", "sh", "-c", "mount -t tmpfs -o size=64k none /mnt"],
        capture_output=True,
        timeout=30,
    )
    return probe.returncode == 0


@pytest.mark.skipif(not can_mount_tmpfs(), reason="needs unshare and tmpfs mounts (root)")
@pytest.mark.slow
def test_a_full_disk_is_an_error_and_a_rerun_after_freeing_space_resumes(
    photos: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """A real ENOSPC: the output on a 224 KiB tmpfs in a private mount namespace; the
    `.partial` it leaves is copied out, as freeing space would leave it, and resumed."""
    root, sources = photos
    small = tmp_path / "small"
    small.mkdir()
    output = tmp_path / "full.h5"
    args = extract_args(root, small / output.name, "chunk_tasks=16")
    script = (
        f"mount -t tmpfs -o size=224k none '{small}' && "
        f"{shlex.join([sys.executable, '-m', 'emotion.extract.app', *args])}; "
        f"status=$?; cp '{small}/{output.name}.partial' '{tmp_path}/'; exit $status"
    )
    full = subprocess.run(
        ["unshare", "--mount", "sh", "-c", script],
        cwd=tmp_path,
        env=environment(),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert_user_error(full, "no space left on the device", "free space")
    assert partial_path_for(output).exists()
    again = emotion(
        "emotion.extract.app", *extract_args(root, output, "chunk_tasks=16"), cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-3000:]
    report = assert_complete(output, sources)
    assert report["run"]["tasks_resumed"] > 0


NO_SPACE = (
    "Unable to synchronously flush file (file write failed: time = Thu Dec  3 2026, filename = "
    "'x.h5.partial', file descriptor = 5, errno = 28, error message = 'No space left on "
    "device', buf = 0x1, total write size = 8192, bytes this sub-write = 8192, offset = 0)"
)


def test_no_space_stops_the_writer_and_the_rerun_keeps_the_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """h5py's own words for ENOSPC, raised by its flush after a few checkpoints: an
    EmotionError saying so, and nothing more written; the rerun resumes from the checkpoint."""
    tree = build_aihub_tree(tmp_path / "aihub")
    output = tmp_path / "nospace.h5"
    clean = extract(settings(tree.root, tmp_path / "clean.h5"))
    flushes = 0
    real_flush = h5py.File.flush

    def flush_until_full(self: h5py.File) -> None:
        nonlocal flushes
        flushes += 1
        if flushes > 6:
            raise RuntimeError(NO_SPACE)
        real_flush(self)

    monkeypatch.setattr(h5py.File, "flush", flush_until_full)
    with pytest.raises(EmotionError) as failure:
        extract(settings(tree.root, output, "chunk_tasks=1"))
    monkeypatch.undo()
    assert "no space left on the device" in failure.value.problem
    assert "free space" in (failure.value.fix or "")
    kept = int(failure.value.problem.split("last checkpoint, ")[1].split(" of ")[0])
    assert kept > 0
    report = extract(settings(tree.root, output, "chunk_tasks=1"))
    assert report["run"]["tasks_resumed"] == kept
    assert list(read_store(output).source) == list(read_store(clean["store"]).source)
    assert report["totals"] == clean["totals"] and report["problems"] == clean["problems"]


def flip_chunk(path: Path, name: str, row: int) -> None:
    """Overwrite the middle of the HDF5 chunk that holds `row` of dataset `name`."""
    with h5py.File(path, "r") as handle:
        dataset = handle[name]
        start = row - row % dataset.chunks[0]
        info = dataset.id.get_chunk_info_by_coord((start,) + (0,) * (dataset.ndim - 1))
    with path.open("r+b") as handle:
        handle.seek(info.byte_offset + info.size // 2)
        handle.write(b"\xff\x00\xff\x00")


def test_a_damaged_partial_is_detected_and_the_whole_chunks_are_salvaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """The rows of the last checkpoint share a chunk with rows written after it: that chunk
    damaged, the rerun says so and resumes from the earlier checkpoint in whole chunks."""
    tree = build_aihub_tree(tmp_path / "aihub")
    clean = extract(settings(tree.root, tmp_path / "clean.h5"))
    output = tmp_path / "damaged.h5"
    monkeypatch.setattr(store_writer, "CHUNK_ROWS", 4, raising=False)  # base: absent
    monkeypatch.setattr(pipeline, "FaceMeshRunner", InterruptingRunner)
    monkeypatch.setattr(InterruptingRunner, "calls", 0)
    monkeypatch.setattr(InterruptingRunner, "stop_at", 10)
    with pytest.raises(KeyboardInterrupt):
        extract(settings(tree.root, output, "chunk_tasks=1"))
    monkeypatch.undo()  # the resumed file keeps its 4-row chunks
    partial = partial_path_for(output)
    with h5py.File(partial, "r") as handle:
        rows = int(handle.attrs["extract_rows"])
        done = int(handle.attrs["extract_tasks_done"])
    assert rows % 4  # the last checkpoint ends inside a chunk
    flip_chunk(partial, "landmarks", rows - 1)
    report = extract(settings(tree.root, output, "chunk_tasks=1"))
    warnings = " ".join(record.getMessage() for record in caplog.records)
    salvaged = report["run"]["tasks_resumed"]
    assert "is damaged" in warnings and f"salvaged {salvaged} of the {done} tasks" in warnings
    assert 0 < salvaged < done
    resumed, baseline = read_store(output), read_store(clean["store"])
    assert list(resumed.source) == list(baseline.source)
    np.testing.assert_array_equal(resumed.landmarks, baseline.landmarks)
    assert report["totals"] == clean["totals"] and report["problems"] == clean["problems"]


# Links planted beside the output; an output that cannot be written.


@pytest.mark.parametrize("planted", [".lock", ".partial"])
def test_a_link_planted_beside_the_output_is_refused_and_its_target_kept(
    photos: tuple[Path, list[str]], tmp_path: Path, planted: str
) -> None:
    root, _ = photos
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    output = tmp_path / "out.h5"
    link = output.with_name(output.name + planted)
    link.symlink_to(victim)
    done = emotion("emotion.extract.app", *extract_args(root, output), cwd=tmp_path, timeout=300)
    assert_user_error(done, "symbolic link", f"rm '{link}'")
    assert victim.read_text() == "precious\n" and link.is_symlink()
    assert not output.exists()


def test_a_read_only_output_location_is_an_error(
    photos: tuple[Path, list[str]], tmp_path: Path
) -> None:
    """/sys refuses new files even to root (tests run as root, where chmod does not)."""
    root, _ = photos
    done = emotion(
        "emotion.extract.app", *extract_args(root, Path("/sys/emotion.h5")), cwd=tmp_path
    )
    assert_user_error(done, "not writable", "fix: choose an output path")
