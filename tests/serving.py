"""`emotion-serve` as users start it: a subprocess on a free loopback port, waited for over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tests.commands import ROOT


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


@dataclass
class Server:
    """A running `emotion-serve`: its URL, port, and what it printed before it answered."""

    base: str
    port: int
    banner: list[str] = field(default_factory=list)
    pid: int = 0  # the emotion-serve process


@contextmanager
def served(
    model: Path | str, *args: str, host: str = "127.0.0.1", timeout: float = 120.0
) -> Iterator[Server]:
    """Start `python -m emotion.serve MODEL --host H --port P ...`; yield it; stop it."""
    port = free_port(host)
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "emotion.serve", str(model), "--host", host, "--port", str(port)]
        + list(args),
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    name = f"[{host}]" if ":" in host else host
    server = Server(f"http://{name}:{port}", port, pid=process.pid)
    try:
        # The banner ("serving ... at URL") is printed before uvicorn listens.
        while process.stdout is not None:
            line = process.stdout.readline()
            if not line:
                break
            server.banner.append(line)
            if line.startswith("serving "):
                break
        # Read on, so a server that logs much never blocks on a full pipe.
        threading.Thread(target=_drain, args=(process, server.banner), daemon=True).start()
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                process.wait()
                time.sleep(0.2)  # the reader thread's last lines
                output = "".join(server.banner)
                raise AssertionError(f"emotion-serve exited {process.returncode}:\n{output}")
            try:
                with urllib.request.urlopen(f"{server.base}/healthz", timeout=2) as response:
                    if json.loads(response.read())["status"] == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("emotion-serve did not answer /healthz in time")
            time.sleep(0.2)
        yield server
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _drain(process: subprocess.Popen[str], lines: list[str]) -> None:
    for line in process.stdout or ():
        lines.append(line)


@contextmanager
def running_server(model: Path | str, *args: str, timeout: float = 120.0) -> Iterator[str]:
    """Start `python -m emotion.serve MODEL --port P ...` on 127.0.0.1; yield its base URL."""
    with served(model, *args, timeout=timeout) as server:
        yield server.base


def post(url: str, body: bytes, timeout: float = 60) -> tuple[int, dict]:
    """POST raw image bytes; the status and the JSON answer, a 4xx as well as a 200."""
    request = urllib.request.Request(url, data=body, headers={"content-type": "image/jpeg"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())
