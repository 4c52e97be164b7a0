"""The serving benchmark's soak: session predicts and session churn against a personal-baseline
model for minutes, the server's RSS sampled throughout, so that a leak shows as growth.

Churned sessions are created, enrolled, used once and deleted, and every few are left behind
for the server's TTL to expire; with a small --max-sessions the cap is reached, and its 429s
are counted apart from errors (the server refusing as designed).
"""

from __future__ import annotations

import http.client
import json
import threading
import time
from collections import Counter
from typing import Any

import numpy as np

from emotion.bench.serve_load import CLIENT_ERRORS, Tally, call, percentiles
from emotion.bench.serve_server import HOST, CpuUse, Server, load_average


def _new_session(connection: http.client.HTTPConnection, photo: bytes, tally: Tally) -> str | None:
    """A session with one enrolled face; None (tallied) when the server refuses."""
    status, body = call(connection, "POST", "/v1/sessions")
    tally.counts["create"] += 1
    if status == 429:
        tally.counts["rejected_429"] += 1
        return None
    if status != 201:
        tally.errors[f"create HTTP {status}"] += 1
        return None
    session = str(json.loads(body)["id"])
    status, _ = call(connection, "POST", f"/v1/sessions/{session}/enroll", photo)
    tally.counts["enroll"] += 1
    if status != 200:
        tally.errors[f"enroll HTTP {status}"] += 1
        return None
    return session


def _session_predicting(
    port: int, photos: list[bytes], offset: int, stop: threading.Event, tally: Tally
) -> None:
    """One long-lived session, predicting in a closed loop until stopped."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    session: str | None = None
    index = offset
    while not stop.is_set():
        try:
            if session is None:
                session = _new_session(connection, photos[index % len(photos)], tally)
                if session is None:
                    stop.wait(0.2)
                    continue
            started = time.perf_counter()
            path = f"/v1/sessions/{session}/predict"
            status, _ = call(connection, "POST", path, photos[index % len(photos)])
            index += 1
            tally.counts["predict"] += 1
            if status == 200:
                tally.latencies.append(time.perf_counter() - started)
            else:
                tally.errors[f"predict HTTP {status}"] += 1
                session = None
        except CLIENT_ERRORS as error:
            tally.errors[type(error).__name__] += 1
            connection.close()
    connection.close()


def _churning(
    port: int,
    photos: list[bytes],
    stop: threading.Event,
    tally: Tally,
    leak_every: int,
    leaked: list[str],
) -> None:
    """Sessions created, enrolled, used once and deleted; every `leak_every`-th left to expire."""
    connection = http.client.HTTPConnection(HOST, port, timeout=60)
    cycle = 0
    while not stop.is_set():
        photo = photos[cycle % len(photos)]
        try:
            session = _new_session(connection, photo, tally)
            if session is None:
                stop.wait(0.2)  # at the cap: wait for leaked sessions to expire
                continue
            status, _ = call(connection, "POST", f"/v1/sessions/{session}/predict", photo)
            tally.counts["predict"] += 1
            if status != 200:
                tally.errors[f"predict HTTP {status}"] += 1
            cycle += 1
            if cycle % leak_every == 0:
                leaked.append(session)
                tally.counts["left_to_expire"] += 1
                continue
            status, _ = call(connection, "DELETE", f"/v1/sessions/{session}")
            tally.counts["delete"] += 1
            if status != 204:
                tally.errors[f"delete HTTP {status}"] += 1
        except CLIENT_ERRORS as error:
            tally.errors[type(error).__name__] += 1
            connection.close()
    connection.close()


def _rss_samples(
    server: Server, stop: threading.Event, every_s: float, into: list[list[float]]
) -> None:
    started = time.perf_counter()
    while True:
        rss = server.rss_mb()
        if rss is not None:
            into.append([round(time.perf_counter() - started, 2), round(rss, 2)])
        if stop.wait(every_s):
            return


def soak(
    server: Server,
    photos: list[bytes],
    seconds: float,
    warmup_s: float,
    every_s: float,
    ttl_s: float,
    leak_every: int = 5,
) -> dict[str, Any]:
    """Session predicts from 2 clients and session churn for `seconds`, RSS sampled throughout;
    then, after the TTL, whether the sessions left behind have expired."""
    load_at_start = load_average()
    cpu = CpuUse(server.pid)
    rss_before = server.rss_mb()
    stop = threading.Event()
    predictors, churn = [Tally(), Tally()], Tally()
    leaked: list[str] = []
    samples: list[list[float]] = []
    threads = [
        threading.Thread(target=_rss_samples, args=(server, stop, every_s, samples)),
        *(
            threading.Thread(
                target=_session_predicting,
                args=(server.port, photos, index * len(photos) // 2, stop, tally),
            )
            for index, tally in enumerate(predictors)
        ),
        threading.Thread(
            target=_churning, args=(server.port, photos, stop, churn, leak_every, leaked)
        ),
    ]
    for thread in threads:
        thread.start()
    time.sleep(seconds)
    stop.set()
    for thread in threads:
        thread.join()
    load_at_end = load_average()
    cores = cpu.cores()
    time.sleep(ttl_s + 1.0)
    checked = leaked[-10:]
    expired = sum(_status_of(server.port, f"/v1/sessions/{key}") == 404 for key in checked)
    latencies = [latency for tally in predictors for latency in tally.latencies]
    errors = sum((tally.errors for tally in (*predictors, churn)), Counter())
    counts = sum((tally.counts for tally in (*predictors, churn)), Counter())
    return {
        "seconds": seconds,
        "predict_clients": len(predictors),
        "churn_clients": 1,
        "requests": dict(counts),
        "session_predicts_per_s": len(latencies) / seconds,
        "session_predict_latency": percentiles(latencies),
        "churn_cycles": churn.counts["predict"],
        "rejected_429": counts["rejected_429"],
        "errors": sum(errors.values()),
        "error_kinds": dict(errors),
        "left_to_expire": len(leaked),
        "left_sessions_expired": f"{expired} of the last {len(checked)} checked after the TTL",
        "left_sessions_all_expired": expired == len(checked),
        "rss": rss_summary(samples, warmup_s, rss_before),
        "cpu_cores_used": cores,
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_at_end,
    }


def _status_of(port: int, path: str) -> int | None:
    connection = http.client.HTTPConnection(HOST, port, timeout=10)
    try:
        return call(connection, "GET", path)[0]
    except CLIENT_ERRORS:
        return None
    finally:
        connection.close()


def rss_summary(
    samples: list[list[float]], warmup_s: float, before: float | None
) -> dict[str, Any]:
    """First (after the warm-up), last, max and growth of the sampled RSS, in MB."""
    settled = [sample for sample in samples if sample[0] >= warmup_s] or samples[-1:]
    if not settled:
        return {"samples": samples, "growth_mb": None}
    values = [rss for _, rss in settled]
    trend = None
    if len(settled) >= 3:
        times = np.asarray([t for t, _ in settled])
        trend = float(np.polyfit(times, np.asarray(values), 1)[0] * 60)
    return {
        "before_load_mb": before,
        "warmup_s": warmup_s,
        "first_mb": values[0],
        "last_mb": values[-1],
        "max_mb": max(values),
        "growth_mb": values[-1] - values[0],
        "max_over_first_mb": max(values) - values[0],
        "trend_mb_per_min": trend,
        "samples": samples,
    }
