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
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotion.bench.serve_server import HOST, CpuUse, Server, load_average

JPEG = {"Content-Type": "image/jpeg"}
FACE_FLAGS = (b'"face":true', b'"face": true')
CLIENT_ERRORS = (OSError, http.client.HTTPException)


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


def _predicting(
    port: int,
    photos: list[bytes],
    offset: int,
    stop_at: float,
    tally: Tally,
    path: str = "/v1/predict",
    headers: dict[str, str] = JPEG,
) -> None:
    """POST `path` (an image, or a JSON face to /v1/predict/landmarks) in a closed loop on one
    keep-alive connection until stop_at."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    index = offset
    while time.perf_counter() < stop_at:
        data = photos[index % len(photos)]
        index += 1
        started = time.perf_counter()
        try:
            connection.request("POST", path, body=data, headers=headers)
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
    server: Server,
    photos: list[bytes],
    clients: int,
    seconds: float,
    path: str = "/v1/predict",
    headers: dict[str, str] = JPEG,
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
            args=(
                port,
                photos,
                index * len(photos) // clients,
                started + seconds,
                tally,
                path,
                headers,
            ),
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
        "path": path,
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
