"""The stream's landmark messages and client-held references, over real sockets on loopback:
a face found by the client is scored as /v1/predict/landmarks scores it and the server
receives no image bytes; a rest face made in one connection, held by the client, scores in
another connection and another server process; a bad reference is an error, and the stream
goes on."""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
pytest.importorskip("mediapipe", reason="the serving tests need the extract extra")

from websockets.sync.client import ClientConnection, connect  # noqa: E402

from emotion.facemesh.landmarker import MODEL_SHA256  # noqa: E402
from emotion.store.io import read_store  # noqa: E402
from tests.serving import Server, post, served  # noqa: E402
from tests.test_serve_api import gray_jpeg  # noqa: E402


def _get(server: Server, path: str) -> tuple[dict[str, str], bytes]:
    with urllib.request.urlopen(f"{server.base}{path}", timeout=30) as response:
        return dict(response.headers), response.read()


def _json(server: Server, path: str) -> dict[str, Any]:
    return json.loads(_get(server, path)[1])


def _post_json(server: Server, path: str, body: dict[str, Any]) -> dict[str, Any]:
    request = urllib.request.Request(
        f"{server.base}{path}",
        data=json.dumps(body).encode(),
        headers={"content-type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


@contextmanager
def _stream(server: Server) -> Iterator[ClientConnection]:
    with connect(f"ws://127.0.0.1:{server.port}/v1/stream", max_size=2**22) as live:
        yield live


def _send(live: ClientConnection, message: dict[str, Any]) -> dict[str, Any]:
    live.send(json.dumps(message))
    return json.loads(live.recv(timeout=30))


def _faces(photo_store: tuple[Path, Path]) -> list[dict[str, Any]]:
    """The store's faces as a browser's FaceLandmarker would send them."""
    store = read_store(photo_store[1])
    return [
        {"landmarks": store.landmarks[row].tolist(), "image_size": store.image_size[row].tolist()}
        for row in range(len(store))
    ]


def _frame(face: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"type": "landmarks", **face, **extra}


def test_landmark_frames_are_scored_as_predict_landmarks_with_no_image_bytes(
    plain_run: Path, photo_store: tuple[Path, Path]
) -> None:
    faces = _faces(photo_store)[:3]
    with served(plain_run) as server:
        info = _json(server, "/v1/model")
        assert info["preprocessing"]["features"] == "landmarks"
        assert info["preprocessing"]["normalization"] == "nose_unit"
        headers, model = _get(server, info["landmarker_url"])
        assert hashlib.sha256(model).hexdigest() == MODEL_SHA256
        assert "max-age=31536000" in headers["cache-control"]
        with _stream(server) as live:
            for face in faces:
                frame = _send(live, _frame(face))
                rest = _post_json(server, "/v1/predict/landmarks", face)
                assert frame["status"] == "ok" and frame["landmarks"] is None, frame
                assert frame["score"] == pytest.approx(rest["score"], abs=1e-9)
            smoothed = frame["smoothed_score"]
            empty = _send(live, {"type": "landmarks", "landmarks": None})
            assert (empty["status"], empty["face"], empty["score"]) == ("no_face", False, None)
            assert empty["smoothed_score"] == smoothed
            short = _send(live, _frame({**faces[0], "landmarks": faces[0]["landmarks"][:10]}))
            assert short["status"] == "bad_frame" and "478" in short["error"], short
            sizeless = _send(live, {"type": "landmarks", "landmarks": faces[0]["landmarks"]})
            assert sizeless["status"] == "bad_frame" and "image_size" in sizeless["error"]
            assert _send(live, _frame(faces[1]))["status"] == "ok"  # the stream goes on
        stats = _json(server, "/v1/stats")
        assert stats == {"image_bytes": 0, "images": 0, "landmark_frames": 7}, stats
        jpeg = gray_jpeg()
        status, _ = post(f"{server.base}/v1/predict", jpeg)
        assert status == 200
        assert _json(server, "/v1/stats")["image_bytes"] == len(jpeg)  # the counter counts


def _held_total(values: np.ndarray) -> str:
    return base64.b64encode(np.asarray(values, dtype="<f4").tobytes()).decode()


@pytest.mark.slow  # two servers start: about 15 s
def test_a_client_held_reference_scores_in_any_connection_and_any_process(
    enrolled_run: Path, photo_store: tuple[Path, Path]
) -> None:
    faces = _faces(photo_store)
    rest, scored = faces[0], faces[5]
    with served(enrolled_run) as server:
        key = _json(server, "/v1/model")["reference_model"]
        with _stream(server) as live:
            assert _send(live, _frame(scored))["status"] == "no_reference"
            assert _send(live, {"type": "calibrate", "action": "start", "replace": True}) == {
                "type": "calibrating"
            }
            assert _send(live, _frame(rest))["status"] == "calibrating"
            calibrated = _send(live, {"type": "calibrate", "action": "stop"})
        held = calibrated["reference"]
        assert (calibrated["type"], held["model"], held["count"]) == ("calibrated", key, 1)
        # The same rest face enrolled in an HTTP session: the score to match.
        session = _post_json(server, "/v1/sessions", {})["id"]
        _post_json(server, f"/v1/sessions/{session}/enroll", {"faces": [rest]})
        expected = _post_json(server, f"/v1/sessions/{session}/predict/landmarks", scored)
        with _stream(server) as live:  # a new connection: the server holds nothing for it
            assert _send(live, _frame(scored))["status"] == "no_reference"
            frame = _send(live, _frame(scored, reference=held))
            assert frame["status"] == "ok", frame
            assert frame["score"] == pytest.approx(expected["score"], abs=1e-5)
            total = base64.b64decode(held["total"])
            bad = {
                "another model": {**held, "model": "0" * 16},
                "NaN": {**held, "total": _held_total(np.full(len(total) // 4, np.nan))},
                "bytes": {**held, "total": _held_total(np.zeros(10))},
                "count": {**held, "count": 0},
                "base64": {**held, "total": "not base64!"},
            }
            for said, reference in bad.items():
                refused = _send(live, _frame(scored, reference=reference))
                assert refused["status"] == "bad_reference" and said in refused["error"], refused
                assert refused["fix"] and refused["score"] is None
                assert _send(live, _frame(scored, reference=held))["status"] == "ok"
    with served(enrolled_run) as other, _stream(other) as live:  # another process
        frame = _send(live, _frame(scored, reference=held))
        assert frame["score"] == pytest.approx(expected["score"], abs=1e-5)
