"""`emotion-serve --processes N`: N server processes on one port (uvicorn's workers), each
with its own model, answering as one process does; idle sockets are still closed."""

from __future__ import annotations

import socket
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
pytest.importorskip("mediapipe", reason="the serving tests need the extract extra")

from tests.commands import emotion  # noqa: E402
from tests.serving import post, served  # noqa: E402
from tests.test_serve_api import assert_same, photos, predicted  # noqa: E402


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (from /proc)."""
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


@pytest.mark.slow
def test_two_processes_answer_as_one(
    plain_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    photo = photos(photo_store)[0]
    (row,) = predicted(plain_run, [photo], tmp_path)
    with served(plain_run, "--processes", "2", "--idle-timeout", "2") as server:
        assert any("2 processes" in line for line in server.banner), server.banner
        assert any("session" in line for line in server.banner)  # what needs one process
        workers = [child for child in children(server.pid) if child]
        assert len(workers) >= 2, workers  # uvicorn's workers (and its resource tracker)
        with ThreadPoolExecutor(4) as pool:
            answers = list(
                pool.map(lambda _: post(server.base + "/v1/predict", photo.read_bytes()), range(12))
            )
        for status, answer in answers:
            assert status == 200
            assert_same(row, answer)
        # A silent socket is still closed after --idle-timeout in every process.
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as silent:
            started = time.monotonic()
            assert silent.recv(1) == b""
            assert time.monotonic() - started < 6


def test_processes_out_of_range_exit_2(plain_run: Path, tmp_path: Path) -> None:
    done = emotion("emotion.serve", str(plain_run), "--processes", "0", cwd=tmp_path)
    assert done.returncode == 2 and "--processes" in done.stderr and "fix:" in done.stderr
