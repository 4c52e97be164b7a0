"""`emotion-serve` to browsers and people, over real sockets on loopback: other sites' pages
(cross-origin requests, DNS rebinding) are refused, the API page works offline, HEAD
/healthz, the 413's option name, an IPv6 address in brackets, and --help's defaults."""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi", reason="the serving tests need the serve extra")
pytest.importorskip("mediapipe", reason="the serving tests need the extract extra")

from websockets.exceptions import ConnectionClosed  # noqa: E402
from websockets.sync.client import connect  # noqa: E402

from tests.commands import emotion  # noqa: E402
from tests.serving import Server, served  # noqa: E402
from tests.test_faults_serve import request  # noqa: E402
from tests.test_serve_api import png_claiming  # noqa: E402

EVIL = "evil.example"


@pytest.fixture(scope="module")
def server(plain_run: Path) -> Iterator[Server]:
    with served(plain_run, "--allowed-host", "emotion.example") as running:
        yield running


def stream_as(server: Server, host: str, origin: str | None) -> int | None:
    """Open the stream naming `host` (as a page of a rebound name does) from `origin`; the
    close code the server sends, or None when it streams."""
    sock = socket.create_connection(("127.0.0.1", server.port))
    try:
        with connect(f"ws://{host}/v1/stream", sock=sock, origin=origin) as live:  # type: ignore[arg-type]
            live.send('{"type": "reset"}')
            json.loads(live.recv(timeout=10))
            return None
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd is not None else -1


def test_a_page_of_another_site_cannot_use_the_server(server: Server) -> None:
    port = server.port
    # DNS rebinding: evil.example resolving to 127.0.0.1, page and Host both evil.example.
    status, body = request(server, "GET", "/healthz", headers={"host": f"{EVIL}:{port}"})
    assert status == 400 and "--allowed-host" in json.loads(body)["fix"]
    assert stream_as(server, f"{EVIL}:{port}", f"http://{EVIL}:{port}") == 1008
    # Cross-origin: the right Host, another site's page; a text/plain POST is never processed.
    status, body = request(
        server,
        "POST",
        "/v1/predict/landmarks",
        '{"landmarks": [], "image_size": [1, 1]}',
        {"content-type": "text/plain", "origin": f"http://{EVIL}"},
    )
    assert status == 403 and json.loads(body)["error"] and json.loads(body)["fix"]
    assert stream_as(server, f"127.0.0.1:{port}", f"http://{EVIL}") == 1008
    # The server's own page, clients without a browser, and a name given by --allowed-host.
    assert stream_as(server, f"127.0.0.1:{port}", f"http://127.0.0.1:{port}") is None
    assert stream_as(server, f"localhost:{port}", None) is None
    assert stream_as(server, f"emotion.example:{port}", f"http://emotion.example:{port}") is None
    assert request(server, "GET", "/healthz", headers={"host": f"[::1]:{port}"})[0] == 200


def test_the_api_page_loads_nothing_from_the_network(server: Server) -> None:
    for page in ("/docs", "/redoc"):
        status, body = request(server, "GET", page)
        html = body.decode()
        assert status == 200
        assert not re.findall(r"https?://", html), page  # every asset is the server's own
        for asset in re.findall(r'(?:src|href)="([^"]+)"', html):
            assert request(server, "GET", asset)[0] == 200, asset
    assert request(server, "GET", "/openapi.json")[0] == 200


def test_small_things_people_meet(server: Server, plain_run: Path, tmp_path: Path) -> None:
    status, body = request(server, "HEAD", "/healthz")
    assert (status, body) == (200, b"")
    status, body = request(
        server, "POST", "/v1/predict", png_claiming(8000, 8000), {"content-type": "image/png"}
    )
    answer = json.loads(body)
    assert status == 413 and "--max-pixels" in answer["error"] and "decode." not in answer["error"]
    shown = emotion("emotion.serve", "--help", cwd=tmp_path)
    assert shown.returncode == 0 and "(default: 8000)" in shown.stdout
    assert "(default: 20.0)" in shown.stdout  # --idle-timeout
    for option, value in (("--allowed-host", "emotion.example:8000"), ("--idle-timeout", "0")):
        refused = emotion("emotion.serve", str(plain_run), option, value, cwd=tmp_path)
        assert refused.returncode == 2 and option in refused.stderr and "fix:" in refused.stderr


@pytest.mark.slow  # a second server: about 11 s
def test_an_ipv6_address_is_printed_in_brackets(plain_run: Path) -> None:
    try:
        socket.socket(socket.AF_INET6).bind(("::1", 0))
    except OSError:
        pytest.skip("this machine has no IPv6 loopback")
    with served(plain_run, host="::1") as running:
        banner = "".join(running.banner)
        assert f"http://[::1]:{running.port}" in banner, banner
