"""The load the serving benchmark puts on `emotion-serve`: the server as a subprocess, closed
loops of HTTP clients, the WebSocket stream client, and the CPU each part keeps busy. The soak's
sessions and memory samples are in emotion.bench.serve_soak.

The clients are threads of the benchmark process, on the server's own cores, so they do as
little as they can: pre-encoded bytes, one keep-alive connection each, a status check and a
byte search for the face flag instead of parsing the JSON.
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

PACKAGE_ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"
JPEG = {"Content-Type": "image/jpeg"}
FACE_FLAGS = (b'"face":true', b'"face": true')
CLIENT_ERRORS = (OSError, http.client.HTTPException)


def load_average() -> list[float]:
    """os.getloadavg(), rounded: every figure here carries the load it was measured under."""
    return [round(load, 2) for load in os.getloadavg()]


def _machine_cpu_s() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine (all cores), from /proc/stat."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    hz = os.sysconf("SC_CLK_TCK")
    return (sum(ticks) - ticks[3] - ticks[4] - ticks[7]) / hz, ticks[7] / hz


def _process_cpu_s(pid: int | None) -> float:
    """User + system CPU seconds of a process (all its threads), 0 when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class CpuUse:
    """Cores kept busy over an interval by the server, by this process (the clients, or the
    bare loop) and by everything else: the shared machine's other work, which the load average
    alone cannot tell from the benchmark's own."""

    def __init__(self, server_pid: int | None = None) -> None:
        self.server_pid = server_pid
        self._start = self._read()

    def _read(self) -> tuple[float, float, float, float, float]:
        own = os.times()
        busy, stolen = _machine_cpu_s() if Path("/proc/stat").exists() else (0.0, 0.0)
        server = _process_cpu_s(self.server_pid) if self.server_pid else 0.0
        return time.perf_counter(), busy, stolen, server, own.user + own.system

    def cores(self) -> dict[str, float]:
        end = self._read()
        wall = max(end[0] - self._start[0], 1e-9)
        busy, stolen, server, own = (
            (b - a) / wall for a, b in zip(self._start[1:], end[1:], strict=True)
        )
        return {
            "machine": busy,
            "server": server,
            "benchmark_process": own,
            "others": max(0.0, busy - server - own),
            "stolen": stolen,
        }


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def subprocess_env() -> dict[str, str]:
    """This checkout importable in the child, whichever directory the benchmark runs from."""
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ, "PYTHONPATH": f"{PACKAGE_ROOT}{os.pathsep}{path}"}


class Server:
    """`python -m emotion.serve MODEL --port P ...` as users start it, until the block ends."""

    def __init__(self, model: Path, *args: str, log: Path, timeout: float = 180.0) -> None:
        self.port = free_port()
        self.command = [sys.executable, "-m", "emotion.serve", str(model), "--port", str(self.port)]
        self.command += list(args)
        self.log = log
        self.timeout = timeout
        self.process: subprocess.Popen[bytes] | None = None
        self.started_in_s = 0.0  # from the command to the first healthy /healthz

    @property
    def pid(self) -> int | None:
        return None if self.process is None else self.process.pid

    def __enter__(self) -> Server:
        with self.log.open("wb") as output:
            self.process = subprocess.Popen(
                self.command, env=subprocess_env(), stdout=output, stderr=subprocess.STDOUT
            )
        started = time.monotonic()
        deadline = started + self.timeout
        while not self._healthy():
            if self.process.poll() is not None:
                raise SystemExit(f"emotion-serve exited {self.process.returncode}:\n{self.tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise SystemExit(f"emotion-serve did not answer /healthz:\n{self.tail()}")
            time.sleep(0.2)
        self.started_in_s = time.monotonic() - started
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    def _healthy(self) -> bool:
        try:
            return self.get_json("/healthz").get("status") == "ok"
        except OSError:
            return False

    def get_json(self, path: str) -> dict[str, Any]:
        with urllib.request.urlopen(f"http://{HOST}:{self.port}{path}", timeout=5) as response:
            return json.loads(response.read())

    def rss_mb(self) -> float | None:
        """The server's resident memory (VmRSS), or None where /proc cannot say."""
        if self.process is None:
            return None
        try:
            status = Path(f"/proc/{self.process.pid}/status").read_text()
        except OSError:
            return None
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return None

    def tail(self, lines: int = 30) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def percentiles(seconds: list[float]) -> dict[str, float | None]:
    """p50/p90/p99/max of latencies, in milliseconds."""
    if not seconds:
        return {"p50_ms": None, "p90_ms": None, "p99_ms": None, "max_ms": None}
    ms = np.asarray(seconds) * 1000
    p50, p90, p99 = np.percentile(ms, [50, 90, 99])
    return {
        "p50_ms": float(p50),
        "p90_ms": float(p90),
        "p99_ms": float(p99),
        "max_ms": float(ms.max()),
    }


@dataclass
class Tally:
    """What one client thread saw: latencies of the answered requests, and what went wrong."""

    latencies: list[float] = field(default_factory=list)
    faces: int = 0
    errors: Counter[str] = field(default_factory=Counter)
    counts: Counter[str] = field(default_factory=Counter)


def _predicting(port: int, photos: list[bytes], offset: int, stop_at: float, tally: Tally) -> None:
    """POST /v1/predict in a closed loop on one keep-alive connection until stop_at."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    index = offset
    while time.perf_counter() < stop_at:
        data = photos[index % len(photos)]
        index += 1
        started = time.perf_counter()
        try:
            connection.request("POST", "/v1/predict", body=data, headers=JPEG)
            response = connection.getresponse()
            body = response.read()
        except CLIENT_ERRORS as error:
            tally.errors[type(error).__name__] += 1
            connection.close()
            continue
        if response.status != 200:
            tally.errors[f"HTTP {response.status}"] += 1
            continue
        tally.latencies.append(time.perf_counter() - started)
        tally.faces += any(flag in body for flag in FACE_FLAGS)
    connection.close()


def closed_loop(
    server: Server, photos: list[bytes], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` threads predicting for `seconds`: requests/s, latency, errors."""
    port = server.port
    load_at_start = load_average()
    cpu = CpuUse(server.pid)
    tallies = [Tally() for _ in range(clients)]
    started = time.perf_counter()
    threads = [
        threading.Thread(
            target=_predicting,
            args=(port, photos, index * len(photos) // clients, started + seconds, tally),
        )
        for index, tally in enumerate(tallies)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall_s = time.perf_counter() - started
    latencies = [latency for tally in tallies for latency in tally.latencies]
    errors = sum((tally.errors for tally in tallies), Counter())
    return {
        "clients": clients,
        "wall_s": wall_s,
        "requests": len(latencies),
        "faces": sum(tally.faces for tally in tallies),
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "requests_per_s": len(latencies) / wall_s,
        **percentiles(latencies),
        "cpu_cores_used": cpu.cores(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }


def call(
    connection: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None
) -> tuple[int, bytes]:
    connection.request(method, path, body=body, headers=JPEG if body else {})
    response = connection.getresponse()
    return response.status, response.read()


def server_timing(port: int, photos: list[bytes], count: int) -> dict[str, Any]:
    """Sequential predicts whose replies are parsed (unlike the load's): the server's own
    timing_ms against the client's latency, to say where a request's time goes."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    client, total, facemesh = [], [], []
    try:
        for index in range(count):
            started = time.perf_counter()
            status, body = call(connection, "POST", "/v1/predict", photos[index % len(photos)])
            client.append(time.perf_counter() - started)
            if status == 200:
                timing = json.loads(body)["timing_ms"]
                total.append(timing["total"] / 1000)
                facemesh.append(timing["facemesh"] / 1000)
    finally:
        connection.close()
    p50 = statistics.median
    return {
        "requests": count,
        "client_p50_ms": 1000 * p50(client),
        "server_total_p50_ms": 1000 * p50(total) if total else None,
        "server_facemesh_p50_ms": 1000 * p50(facemesh) if facemesh else None,
        "outside_handler_p50_ms": 1000 * (p50(client) - p50(total)) if total else None,
    }


def stream_run(
    server: Server, frames: list[bytes], seconds: float, fps: float | None
) -> dict[str, Any]:
    """One /v1/stream client, a frame at a time: as fast as replies come, or paced at `fps`
    like a camera that drops the frames it could not send while it waited for a reply."""
    from websockets.sync.client import connect

    port = server.port
    load_at_start = load_average()
    cpu = CpuUse(server.pid)
    statuses: Counter[str] = Counter()
    latencies: list[float] = []
    dropped = 0
    with connect(f"ws://{HOST}:{port}/v1/stream", max_size=None) as websocket:
        for frame in frames[:3]:  # warm: the connection's first frames
            websocket.send(frame)
            websocket.recv()
        interval = 1.0 / fps if fps else 0.0
        slots = round(seconds * fps) if fps else 0  # the camera's frames in `seconds`
        slot = 0
        started = end = time.perf_counter()
        while slot < slots if fps else end - started < seconds:
            wait = started + slot * interval - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            sent = time.perf_counter()
            websocket.send(frames[len(latencies) % len(frames)])
            reply = json.loads(websocket.recv())
            end = time.perf_counter()
            latencies.append(end - sent)
            statuses[reply.get("status", reply.get("type", "?"))] += 1
            if fps:  # the newest frame goes next; those it replaced while waiting are dropped
                latest = min(int((end - started) / interval), slots)
                dropped += max(0, latest - slot - 1)
                slot = max(slot + 1, latest)
    elapsed = seconds if fps else end - started
    errors = sum(count for status, count in statuses.items() if status not in ("ok", "no_face"))
    return {
        "target_fps": fps,
        "seconds": elapsed,
        "frames": len(latencies),
        "frames_per_s": len(latencies) / elapsed,
        "dropped_frames": dropped,
        "statuses": dict(statuses),
        "errors": errors,
        **percentiles(latencies),
        "cpu_cores_used": cpu.cores(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }
