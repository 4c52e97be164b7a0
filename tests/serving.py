"""`emotion-serve` as users start it: a subprocess on a free loopback port, waited for over HTTP."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.commands import ROOT


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_server(model: Path | str, *args: str, timeout: float = 120.0) -> Iterator[str]:
    """Start `python -m emotion.serve MODEL --port P ...`; yield its base URL; stop it."""
    port = free_port()
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    process = subprocess.Popen(
        [sys.executable, "-m", "emotion.serve", str(model), "--port", str(port), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                output = process.stdout.read() if process.stdout else ""
                raise AssertionError(f"emotion-serve exited {process.returncode}:\n{output}")
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as response:
                    if json.loads(response.read())["status"] == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError("emotion-serve did not answer /healthz in time")
            time.sleep(0.2)
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
