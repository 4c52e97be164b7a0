"""`emotion-serve` as users run it: a real subprocess on a free loopback port, spoken to over
HTTP and a WebSocket, and its exit status on bad arguments."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
pytest.importorskip("mediapipe", reason="the serving tests need the extract extra")

from websockets.sync.client import connect  # noqa: E402

from tests.commands import emotion  # noqa: E402
from tests.serving import post, running_server  # noqa: E402
from tests.test_serve_api import assert_same, photos, predicted  # noqa: E402


def test_the_served_page_api_and_stream(
    plain_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    photo = photos(photo_store)[0]
    (row,) = predicted(plain_run, [photo], tmp_path)
    with running_server(plain_run, "--workers", "2") as base:
        with urllib.request.urlopen(base + "/", timeout=10) as page:
            html = page.read().decode()
        assert "/static/app.js" in html and "http" not in html.split("<body")[0].lower()
        with urllib.request.urlopen(base + "/static/app.js", timeout=10) as script:
            assert script.status == 200 and b"/v1/stream" in script.read()
        status, answer = post(base + "/v1/predict", photo.read_bytes())
        assert status == 200
        assert_same(row, answer)
        status, refused = post(base + "/v1/predict", b"\x00garbage")
        assert status == 415 and refused["fix"]
        with connect(base.replace("http", "ws") + "/v1/stream") as socket:
            socket.send(photo.read_bytes())
            frame = json.loads(socket.recv(timeout=30))
        assert frame["status"] == "ok"
        assert frame["probabilities"] == pytest.approx(answer["probabilities"], abs=1e-9)
        with urllib.request.urlopen(base + "/docs", timeout=10) as docs:
            assert docs.status == 200
        port = base.rsplit(":", 1)[1]
        taken = emotion("emotion.serve", str(plain_run), "--port", port, cwd=tmp_path)
        assert taken.returncode == 2 and "in use" in taken.stderr


def test_bad_arguments_exit_2_with_error_and_fix(plain_run: Path, tmp_path: Path) -> None:
    missing = emotion("emotion.serve", str(tmp_path / "nothing"), cwd=tmp_path)
    assert missing.returncode == 2
    assert "error:" in missing.stderr and "fix:" in missing.stderr
    assert "Traceback" not in missing.stderr
    workers = emotion("emotion.serve", str(plain_run), "--workers", "0", cwd=tmp_path)
    assert workers.returncode == 2 and "--workers" in workers.stderr
