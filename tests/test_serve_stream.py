"""The live stream in-process: each frame's score and the EMA-smoothed score predict gives
videos, frames without a face leave the smoothed score alone, calibration sets the personal
baseline's reference, and only the server's own page may connect."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
pytest.importorskip("mediapipe", reason="the serving tests need the extract extra")

from starlette.websockets import WebSocketDisconnect  # noqa: E402

from tests.test_serve_api import (  # noqa: E402
    assert_same,
    client_for,
    gray_jpeg,
    photos,
    predicted,
)


def test_frames_are_scored_and_smoothed_and_no_face_does_not_move_it(
    plain_run: Path, photo_store: tuple[Path, Path]
) -> None:
    files = photos(photo_store)[:4]
    alpha = 0.4
    with (
        client_for(plain_run, ema_alpha=alpha) as client,
        client.websocket_connect("/v1/stream") as socket,
    ):
        smoothed = None
        for seq, path in enumerate(files, start=1):
            socket.send_bytes(path.read_bytes())
            frame = socket.receive_json()
            assert (frame["type"], frame["seq"], frame["status"]) == ("frame", seq, "ok")
            assert len(frame["landmarks"]) == 478 and frame["face"]
            score = frame["score"]
            smoothed = score if smoothed is None else alpha * score + (1 - alpha) * smoothed
            assert frame["smoothed_score"] == pytest.approx(smoothed, abs=1e-9)
            assert frame["timing_ms"]["total"] >= frame["timing_ms"]["facemesh"] > 0
        socket.send_bytes(gray_jpeg())
        empty = socket.receive_json()
        assert (empty["status"], empty["face"], empty["score"]) == ("no_face", False, None)
        assert empty["smoothed_score"] == pytest.approx(smoothed, abs=1e-9)
        socket.send_bytes(b"not a frame")
        bad = socket.receive_json()
        assert bad["status"] == "bad_frame" and bad["error"] and bad["fix"]
        socket.send_text("{nonsense")
        assert socket.receive_json()["type"] == "error"
        socket.send_text('{"type": "reset"}')
        assert socket.receive_json() == {"type": "reset"}
        socket.send_bytes(files[0].read_bytes())
        after = socket.receive_json()
        assert after["smoothed_score"] == pytest.approx(after["score"], abs=1e-9)


def test_a_baseline_stream_calibrates_then_scores_as_predict_enroll_does(
    enrolled_run: Path, photo_store: tuple[Path, Path], tmp_path: Path
) -> None:
    rest = photo_store[0] / "test" / "neutral" / "pC_0.jpg"
    scored = [photo_store[0] / "test" / "anxious" / f"pC_{n}.jpg" for n in (2, 3)]
    rows = predicted(enrolled_run, scored, tmp_path, enroll=[str(rest)])
    with client_for(enrolled_run) as client, client.websocket_connect("/v1/stream") as socket:
        socket.send_bytes(scored[0].read_bytes())
        early = socket.receive_json()
        assert early["status"] == "no_reference" and early["face"] and early["score"] is None
        socket.send_text('{"type": "calibrate", "action": "stop"}')
        assert "no calibration" in socket.receive_json()["error"]  # none was started
        socket.send_text('{"type": "calibrate", "action": "start"}')
        assert socket.receive_json() == {"type": "calibrating"}
        socket.send_bytes(gray_jpeg())
        assert socket.receive_json()["status"] == "no_face"
        socket.send_bytes(rest.read_bytes())
        calibrating = socket.receive_json()
        assert calibrating["status"] == "calibrating" and calibrating["enrolled"] == 1
        socket.send_text('{"type": "calibrate", "action": "stop"}')
        calibrated = socket.receive_json()
        assert calibrated.pop("reference")["count"] == 1  # for a client to hold
        assert calibrated == {"type": "calibrated", "enrolled": 1, "added": 1}
        for path, row in zip(scored, rows, strict=True):
            socket.send_bytes(path.read_bytes())
            frame = socket.receive_json()
            assert frame["status"] == "ok"
            assert_same(row, frame)


def test_a_stream_can_use_a_session_enrolled_over_http(
    enrolled_run: Path, photo_store: tuple[Path, Path]
) -> None:
    rest = photo_store[0] / "test" / "neutral" / "pD_0.jpg"
    probe = photo_store[0] / "test" / "anxious" / "pD_2.jpg"
    with client_for(enrolled_run) as client:
        key = client.post("/v1/sessions").json()["id"]
        client.post(f"/v1/sessions/{key}/enroll", content=rest.read_bytes())
        expected = client.post(f"/v1/sessions/{key}/predict", content=probe.read_bytes()).json()
        with client.websocket_connect(f"/v1/stream?session={key}") as socket:
            socket.send_bytes(probe.read_bytes())
            frame = socket.receive_json()
        assert frame["enrolled"] == 1
        assert frame["probabilities"] == pytest.approx(expected["probabilities"], abs=1e-9)
        with client.websocket_connect("/v1/stream?session=nope") as socket:
            message = socket.receive_json()
            assert message["type"] == "error" and "POST /v1/sessions" in message["fix"]
            with pytest.raises(WebSocketDisconnect) as closed:
                socket.receive_json()
            assert closed.value.code == 4404


def test_only_the_servers_own_page_may_stream(plain_run: Path) -> None:
    with client_for(plain_run) as client:
        with pytest.raises(WebSocketDisconnect) as refused:
            with client.websocket_connect(
                "/v1/stream", headers={"origin": "http://elsewhere.example"}
            ) as socket:
                socket.receive_json()
        assert refused.value.code == 1008
        with client.websocket_connect(
            "/v1/stream", headers={"origin": "http://testserver"}
        ) as socket:
            socket.send_text('{"type": "reset"}')
            assert socket.receive_json() == {"type": "reset"}
