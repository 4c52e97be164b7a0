"""`emotion-serve` under the faults of issue 25, over real sockets on loopback: idle clients
that hold every connection slot, hostile stream messages, numbers that overflow float32,
other sites' pages (cross-origin, DNS rebinding), the offline API page, and calibration over
a session enrolled over HTTP."""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
pytest.importorskip("mediapipe", reason="the serving tests need the extract extra")

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import ClientConnection, connect  # noqa: E402

from emotion.store.io import read_store  # noqa: E402
from tests.serving import Server, served  # noqa: E402
from tests.test_serve_api import gray_jpeg  # noqa: E402

IDLE = 3.0  # --idle-timeout of the servers here: short, so waiting for it is cheap
SLOTS = 64  # --max-connections' default


@pytest.fixture(scope="module")
def plain_server(plain_run: Path) -> Iterator[Server]:
    with served(
        plain_run, "--idle-timeout", str(IDLE), "--allowed-host", "emotion.example"
    ) as server:
        yield server


@pytest.fixture(scope="module")
def enrolled_server(enrolled_run: Path) -> Iterator[Server]:
    with served(enrolled_run, "--idle-timeout", "30") as server:
        yield server


def request(
    server: Server,
    method: str,
    path: str,
    body: bytes | str | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    """One request on its own connection; the status and the body."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def post_json(server: Server, path: str, payload: object) -> tuple[int, dict]:
    status, body = request(
        server, "POST", path, json.dumps(payload), {"content-type": "application/json"}
    )
    return status, json.loads(body)


def stream(server: Server, query: str = "", **options: object) -> ClientConnection:
    return connect(f"ws://127.0.0.1:{server.port}/v1/stream{query}", **options)  # type: ignore[arg-type]


def wait_for_a_slot(server: Server, within: float) -> tuple[int, float]:
    """/healthz asked until it answers 200; the first status and the seconds it took."""
    started = time.monotonic()
    first = None
    while True:
        status, _ = request(server, "GET", "/healthz")
        first = first or status
        elapsed = time.monotonic() - started
        if status == 200 or elapsed > within:
            return first, elapsed
        time.sleep(0.1)


def assert_closed_by_server(sock: socket.socket) -> None:
    sock.settimeout(5)
    assert sock.recv(1024) == b""  # the server closed it (EOF), the client never did


def test_idle_sockets_are_closed_so_new_clients_get_in(plain_server: Server) -> None:
    """64 sockets that send nothing or half a request line: 503 for others until the idle
    timeout closes them, then 200 within the timeout plus one request."""
    with ExitStack() as stack:
        idle = []
        for number in range(SLOTS):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", plain_server.port)))
            if number % 2:
                sock.sendall(b"GET /healthz HT")  # slowloris: headers never finished
            idle.append(sock)
        time.sleep(0.3)  # every one accepted
        first, elapsed = wait_for_a_slot(plain_server, within=IDLE + 5)
        assert first == 503  # the slots were taken: the lockout was real
        assert elapsed <= IDLE + 1.5, f"a new client waited {elapsed:.1f} s"
        for sock in idle:
            assert_closed_by_server(sock)
    # A client between two requests on one keep-alive connection is not cut while it works.
    connection = http.client.HTTPConnection("127.0.0.1", plain_server.port, timeout=10)
    for _ in range(3):
        connection.request("GET", "/healthz")
        assert connection.getresponse().read() == b'{"status":"ok"}'
        time.sleep(IDLE / 3)
    connection.close()


def test_idle_streams_are_closed_so_new_clients_get_in(plain_server: Server) -> None:
    with ExitStack() as stack:
        sockets = [stack.enter_context(stream(plain_server)) for _ in range(SLOTS)]
        first, elapsed = wait_for_a_slot(plain_server, within=IDLE + 5)
        assert first == 503
        assert elapsed <= IDLE + 1.5, f"a new client waited {elapsed:.1f} s"
        for idle in sockets:
            with pytest.raises(ConnectionClosed) as closed:
                idle.recv(timeout=5)
            assert closed.value.rcvd is not None and closed.value.rcvd.code == 4408


def test_a_stream_that_keeps_sending_is_not_closed(plain_server: Server) -> None:
    with stream(plain_server) as live:  # silent 0.6 of the timeout at a time, 1.8 of it in all
        for _ in range(3):
            live.send('{"type": "reset"}')
            assert json.loads(live.recv(timeout=5)) == {"type": "reset"}
            time.sleep(IDLE * 0.6)


@pytest.mark.parametrize(
    "text", ["[" * 100_000, "[" * 1000, '{"type": "reset", "pad": "' + "x" * 70_000 + '"}']
)
def test_a_deep_or_long_text_message_is_an_error_and_the_stream_goes_on(
    plain_server: Server, text: str
) -> None:
    with stream(plain_server) as live:
        live.send(text)
        answer = json.loads(live.recv(timeout=10))
        assert answer["type"] == "error" and answer["error"] and answer["fix"]
        live.send('{"type": "reset"}')
        assert json.loads(live.recv(timeout=10)) == {"type": "reset"}


@pytest.fixture(scope="module")
def face(photo_store: tuple[Path, Path]) -> tuple[np.ndarray, list[int]]:
    """A real face's raw FaceMesh landmarks and image size (from the photo store)."""
    store = read_store(photo_store[1])
    return store.landmarks[0].astype(np.float64), [int(v) for v in store.image_size[0]]


def bad_faces(face: tuple[np.ndarray, list[int]]) -> dict[str, dict]:
    points, size = face
    one_huge = points.copy()
    one_huge[5, 0] = 1e39  # past float32: inf after the cast
    return {
        "x1e300": {"landmarks": (points * 1e300).tolist(), "image_size": size},
        "one 1e39": {"landmarks": one_huge.tolist(), "image_size": size},
        "x1e20": {"landmarks": (points * 1e20).tolist(), "image_size": size},
        "all zero": {"landmarks": np.zeros_like(points).tolist(), "image_size": size},
        "one point": {"landmarks": np.tile(points[1], (478, 1)).tolist(), "image_size": size},
        "x1e-30": {"landmarks": (points * 1e-30).tolist(), "image_size": size},
        "image_size 1e30": {"landmarks": points.tolist(), "image_size": [1e30, 512]},
        "image_size 0": {"landmarks": points.tolist(), "image_size": [0, 512]},
    }


def test_landmarks_past_float32_or_no_face_are_a_422(
    plain_server: Server, face: tuple[np.ndarray, list[int]]
) -> None:
    for name, payload in bad_faces(face).items():
        status, answer = post_json(plain_server, "/v1/predict/landmarks", payload)
        assert status == 422, (name, answer)
        assert answer["error"] and answer["fix"], name
    points, size = face
    payload = {"landmarks": points.tolist(), "image_size": size}
    status, good = post_json(plain_server, "/v1/predict/landmarks", payload)
    assert status == 200 and good["face"] and good["label"] in good["probabilities"]


def test_bad_landmarks_are_never_enrolled(
    enrolled_server: Server, face: tuple[np.ndarray, list[int]]
) -> None:
    status, session = post_json(enrolled_server, "/v1/sessions", {})
    assert status == 201
    key = session["id"]
    for name, payload in bad_faces(face).items():
        status, answer = post_json(enrolled_server, f"/v1/sessions/{key}/enroll", payload)
        assert status == 422 and answer["fix"], (name, answer)
    status, body = request(enrolled_server, "GET", f"/v1/sessions/{key}")
    assert json.loads(body)["enrolled"] == 0
    points, size = face
    good = {"landmarks": points.tolist(), "image_size": size}
    status, enrolled = post_json(enrolled_server, f"/v1/sessions/{key}/enroll", good)
    assert status == 200 and enrolled["enrolled"] == 1
    status, answer = post_json(enrolled_server, f"/v1/sessions/{key}/predict/landmarks", good)
    assert status == 200 and answer["label"] in answer["probabilities"]


def test_calibrating_a_session_enrolled_over_http_adds_to_it_and_no_face_keeps_it(
    enrolled_server: Server, photo_store: tuple[Path, Path]
) -> None:
    people = photo_store[0] / "test"
    rest, again = people / "neutral" / "pC_0.jpg", people / "neutral" / "pD_0.jpg"
    status, session = post_json(enrolled_server, "/v1/sessions", {})
    key = session["id"]
    status, body = request(
        enrolled_server,
        "POST",
        f"/v1/sessions/{key}/enroll",
        rest.read_bytes(),
        {"content-type": "image/jpeg"},
    )
    assert status == 200 and json.loads(body)["enrolled"] == 1

    def enrolled() -> int:
        return json.loads(request(enrolled_server, "GET", f"/v1/sessions/{key}")[1])["enrolled"]

    with stream(enrolled_server, f"?session={key}") as live:

        def calibrate(frame: bytes, **start: object) -> dict:
            live.send(json.dumps({"type": "calibrate", "action": "start", **start}))
            assert json.loads(live.recv(timeout=10)) == {"type": "calibrating"}
            live.send(frame)
            json.loads(live.recv(timeout=30))
            live.send('{"type": "calibrate", "action": "stop"}')
            answer = json.loads(live.recv(timeout=10))
            if "reference" in answer:  # the whole reference, for a client to hold: its count
                answer["reference"] = answer["reference"]["count"]
            return answer

        nothing = calibrate(gray_jpeg())  # no face in it
        assert nothing["type"] == "error" and "no face" in nothing["error"] and nothing["fix"]
        assert enrolled() == 1  # the HTTP enrolment is still there
        added = calibrate(again.read_bytes())
        assert added == {"type": "calibrated", "enrolled": 2, "added": 1, "reference": 2}
        assert enrolled() == 2
        replaced = calibrate(again.read_bytes(), replace=True)
        assert replaced == {"type": "calibrated", "enrolled": 1, "added": 1, "reference": 1}
    assert enrolled() == 1
