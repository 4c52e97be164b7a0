"""The serving benchmark's scale-out parts (issue 27): what a request costs when the client
sends landmarks instead of an image, and what a second server process buys.

  landmarks  POST /v1/predict/landmarks (the photos' own landmarks, as JSON, as a page that
             finds the face itself sends them) against POST /v1/predict (the photos) from
             one client, against the same one-worker server, alternating;
  processes  POST /v1/predict from 8 clients against `--processes 1` and `--processes 2`
             (one landmarker each), alternating;
  stream     landmark messages against camera frames on /v1/stream, 4 streams at once against
             the one-worker server, alternating: frames/s per core the server used.
The clients are threads of this process on the server's own cores: the figures say so.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from emotion.bench.serve_load import CLIENT_ERRORS, Tally, closed_loop, percentiles
from emotion.bench.serve_server import HOST, CpuUse, Server, load_average

JSON = {"Content-Type": "application/json"}
LANDMARKS_TARGET = 5.0
PROCESSES_TARGET = 1.5
STREAM_TARGET = 20.0


def landmark_bodies(engine: Any, photos: list[bytes]) -> list[bytes]:
    """Each photo's face as /v1/predict/landmarks takes it: what the landmarker found in it,
    with its blendshapes and pose (a page sends what the model reads; these are all)."""
    bodies = []
    for data in photos:
        found = engine.find_face(data)
        if found.landmarks is None:
            continue
        face = {
            "landmarks": np.round(found.landmarks.astype(float), 6).tolist(),
            "image_size": list(found.image_size),
            "blendshapes": np.round(found.blendshapes.astype(float), 6).tolist(),
            "pose": np.round(found.pose.astype(float), 6).tolist(),
        }
        bodies.append(json.dumps(face).encode())
    return bodies


def landmarks_vs_images(
    server: Server, photos: list[bytes], bodies: list[bytes], seconds: float, rounds: int
) -> dict[str, Any]:
    """One client, alternating rounds: requests/s of landmark JSON over images."""
    images, landmarks = [], []
    for _ in range(rounds):
        images.append(closed_loop(server, photos, 1, seconds))
        landmarks.append(closed_loop(server, bodies, 1, seconds, "/v1/predict/landmarks", JSON))
    image_rate = statistics.median(point["requests_per_s"] for point in images)
    landmark_rate = statistics.median(point["requests_per_s"] for point in landmarks)
    return {
        "clients": 1,
        "body_bytes_mean": {
            "image": statistics.mean(map(len, photos)),
            "landmarks_json": statistics.mean(map(len, bodies)),
        },
        "images": images,
        "landmarks": landmarks,
        "images_requests_per_s": image_rate,
        "landmarks_requests_per_s": landmark_rate,
        "ratio": landmark_rate / image_rate,
        "target": f">= {LANDMARKS_TARGET} x",
        "met": landmark_rate / image_rate >= LANDMARKS_TARGET,
    }


def processes_points(
    model: Path, photos: list[bytes], workdir: Path, seconds: float, rounds: int, clients: int = 8
) -> dict[str, Any]:
    """`--processes 1` against `--processes 2` at `clients` clients, alternating servers."""
    runs: dict[int, list[dict[str, Any]]] = {1: [], 2: []}
    for round_ in range(rounds):
        for processes in (1, 2):
            log = workdir / f"serve_processes{processes}_{round_}.log"
            with Server(model, "--processes", str(processes), log=log) as server:
                closed_loop(server, photos, clients, min(2.0, seconds / 3))  # warm every process
                runs[processes].append(closed_loop(server, photos, clients, seconds))
    rate = {n: statistics.median(p["requests_per_s"] for p in points) for n, points in runs.items()}
    return {
        "clients": clients,
        "note": "the client threads run on the server's cores: their CPU is the benchmark's "
        "(cpu_cores_used.benchmark), counted apart from the server processes",
        "processes_1": runs[1],
        "processes_2": runs[2],
        "requests_per_s": {f"processes_{n}": value for n, value in rate.items()},
        "ratio": rate[2] / rate[1],
        "target": f">= {PROCESSES_TARGET} x",
        "met": rate[2] / rate[1] >= PROCESSES_TARGET,
    }


def _streaming(port: int, messages: list[Any], stop_at: float, tally: Tally) -> None:
    """One /v1/stream client in a closed loop: a message, its reply, the next."""
    from websockets.sync.client import connect

    try:
        with connect(f"ws://{HOST}:{port}/v1/stream", max_size=None) as websocket:
            index = 0
            while time.perf_counter() < stop_at:
                sent = time.perf_counter()
                websocket.send(messages[index % len(messages)])
                reply = json.loads(websocket.recv())
                tally.latencies.append(time.perf_counter() - sent)
                index += 1
                status = reply.get("status", reply.get("type", "?"))
                tally.counts[status] += 1
                if status not in ("ok", "no_face"):
                    tally.errors[status] += 1
    except CLIENT_ERRORS as error:
        tally.errors[type(error).__name__] += 1


def stream_load(
    server: Server, messages: list[Any], clients: int, seconds: float
) -> dict[str, Any]:
    """`clients` streams at once for `seconds`: frames/s, and frames/s per core the server
    used (the clients share the machine, so per core is the fair figure)."""
    load_at_start = load_average()
    cpu = CpuUse(server.pid)
    tallies = [Tally() for _ in range(clients)]
    stop_at = time.perf_counter() + seconds
    threads = [
        threading.Thread(target=_streaming, args=(server.port, messages, stop_at, tally))
        for tally in tallies
    ]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    used = cpu.cores()
    latencies = [latency for tally in tallies for latency in tally.latencies]
    frames_per_s = len(latencies) / wall
    return {
        "clients": clients,
        "frames": len(latencies),
        "frames_per_s": frames_per_s,
        "frames_per_s_per_server_core": frames_per_s / max(used["server"], 1e-9),
        "statuses": dict(sum((tally.counts for tally in tallies), Counter())),
        "errors": sum(sum(tally.errors.values()) for tally in tallies),
        **percentiles(latencies),
        "cpu_cores_used": used,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }


def landmark_messages(bodies: list[bytes]) -> list[str]:
    """The stream's landmark messages: each face of /v1/predict/landmarks, typed."""
    return [json.dumps({"type": "landmarks", **json.loads(body)}) for body in bodies]


def stream_landmarks_vs_frames(
    server: Server, frames: list[bytes], bodies: list[bytes], seconds: float, rounds: int,
    clients: int = 4,
) -> dict[str, Any]:  # fmt: skip
    """Landmark messages against camera frames on the stream, `clients` streams at once
    (enough to keep the one-worker server's core busy), alternating: frames/s per server
    core, and p99 over p50 of the landmark frames."""
    messages = landmark_messages(bodies)
    images, landmarks = [], []
    for _ in range(rounds):
        images.append(stream_load(server, frames, clients, seconds))
        landmarks.append(stream_load(server, messages, clients, seconds))
    per_core = {
        kind: statistics.median(point["frames_per_s_per_server_core"] for point in points)
        for kind, points in (("images", images), ("landmarks", landmarks))
    }
    tails = [p["p99_ms"] / p["p50_ms"] for p in landmarks if p["p50_ms"]]
    return {
        "clients": clients,
        "message_bytes_mean": {
            "image_frame": statistics.mean(map(len, frames)),
            "landmarks_json": statistics.mean(len(message.encode()) for message in messages),
        },
        "images": images,
        "landmarks": landmarks,
        "frames_per_s_per_server_core": per_core,
        "ratio": per_core["landmarks"] / per_core["images"],
        "landmarks_p99_over_p50": statistics.median(tails) if tails else None,
        "target": f">= {STREAM_TARGET} x per server core; landmark p99 <= 3 x p50",
        "met": per_core["landmarks"] / per_core["images"] >= STREAM_TARGET
        and bool(tails)
        and statistics.median(tails) <= 3,
    }
