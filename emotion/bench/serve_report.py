"""The serving benchmark's JSON: each figure beside its baseline, ratios, the targets met or
missed, and a short summary for the terminal."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
from typing import Any

from emotion.bench.serve_inputs import Photos

# The targets, printed and written with each figure (never asserted).
SERVER_VS_BARE = 0.8
WORKER_GROWTH = 1.1
P99_OVER_P50 = 3.0
RSS_GROWTH_MB = 50.0
KEEP_UP = 0.95  # share of the paced frame rate that counts as keeping up


def rounded(value: Any) -> Any:
    """Floats to 4 decimals: past that the figures are machine noise, and unreadable."""
    if isinstance(value, float):
        return round(value, 4)
    if isinstance(value, dict):
        return {key: rounded(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(item) for item in value]
    return value


def summary_of(point: dict[str, Any]) -> str:
    return (
        f"{point['clients']} clients: {point['requests_per_s']:.1f} req/s, "
        f"p50 {point['p50_ms'] or 0:.1f} ms, p99 {point['p99_ms'] or 0:.1f} ms, "
        f"{point['errors']} errors, other work {point['cpu_cores_used']['others']:.2f} cores"
    )


def result_json(
    args: argparse.Namespace,
    photos: Photos,
    models: dict[str, Any],
    bare: list[dict[str, Any]],
    throughput: dict[str, Any],
    stream: dict[str, Any] | None,
    soaked: dict[str, Any] | None,
) -> dict[str, Any]:
    """The figures written to --output: as measured, their ratios, the targets, the machine."""
    import torch

    bare_rate = statistics.mean(round_["photos_per_s"] for round_ in bare)
    cores = os.cpu_count() or 1
    rps = {
        (workers, clients): throughput[f"workers_{workers}"][f"clients_{clients}"]["requests_per_s"]
        for workers in args.workers
        for clients in args.clients
    }
    vs_bare = {f"workers_{w}": rps[(w, 1)] / bare_rate for w in args.workers if (w, 1) in rps}
    most = max(args.clients)
    efficiency = {
        f"workers_{w}": rps[(w, most)] / (bare_rate * min(w, cores)) for w in args.workers
    }
    ordered = sorted(args.workers)
    growth = {
        f"workers_{high}_over_{low}": rps[(high, most)] / rps[(low, most)]
        for low, high in zip(ordered, ordered[1:], strict=False)
    }
    tails = {}
    if 1 in args.clients:
        for workers in args.workers:
            point = throughput[f"workers_{workers}"]["clients_1"]
            if point["p50_ms"]:
                tails[f"workers_{workers}"] = point["p99_ms"] / point["p50_ms"]
    errors = sum(
        point["errors"] + point["warmup_errors"]
        for points in throughput.values()
        for key, point in points.items()
        if key.startswith("clients_")
    )
    errors += sum(stream[run]["errors"] for run in ("unpaced", "paced")) if stream else 0
    errors += soaked["errors"] if soaked else 0
    result = {
        "benchmark": "serve",
        "photos": photos.source,
        "photos_detail": photos.detail,
        "photos_usable": len(photos.usable),
        "photos_with_face": len(photos.faces),
        "photos_dropped_undecodable": photos.dropped,
        "clients_on_same_machine": True,
        "models": models,
        "trained_on_synthetic": any(info["trained_on_synthetic"] for info in models.values()),
        "settings": {
            key: getattr(args, key)
            for key in ("seconds", "workers", "clients", "stream_seconds", "stream_fps")
        }
        | {"soak_seconds": args.soak_seconds, "torch_threads": torch.get_num_threads()},
        "bare_loop": {"rounds": bare, "photos_per_s": bare_rate},
        "throughput": throughput,
        "server_vs_bare": vs_bare,
        f"per_worker_efficiency_at_{most}_clients": efficiency,
        f"growth_with_workers_at_{most}_clients": growth,
        "p99_over_p50_at_1_client": tails,
        "stream": stream,
        "soak": soaked,
        "errors_total": errors,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": cores,
            "torch": torch.__version__,
        },
    }
    measured = [*bare, *(stream[run] for run in ("unpaced", "paced") if stream)]
    measured += [p for ps in throughput.values() for k, p in ps.items() if k.startswith("clients_")]
    measured += [soaked] if soaked else []
    others = [part["cpu_cores_used"]["others"] for part in measured]
    result["other_work_cores"] = {
        "note": "cores kept busy by processes other than this benchmark and its server, "
        "from /proc/stat: the load average counts this benchmark's own threads too",
        "max": max(others),
        "mean": statistics.mean(others),
        "max_stolen": max(part["cpu_cores_used"]["stolen"] for part in measured),
    }
    result["targets"] = targets(args, result, cores)
    return result


def targets(args: argparse.Namespace, result: dict[str, Any], cores: int) -> dict[str, Any]:
    """Each target, its value and whether it was met (printed, never asserted)."""
    one = result["server_vs_bare"].get(f"workers_{min(args.workers)}")
    growth = {
        key: value
        for key, value in next(v for k, v in result.items() if k.startswith("growth_")).items()
        if int(key.split("_")[1]) <= cores
    }
    tails = result["p99_over_p50_at_1_client"]
    rss = result["soak"]["rss"].get("growth_mb") if result["soak"] else None
    stream = result["stream"]
    paced = stream["paced"]["frames_per_s"] if stream else None
    return {
        "server_vs_bare_at_1_client": {
            "target": f">= {SERVER_VS_BARE} x the bare loop's photos/s (one worker)",
            "value": one,
            "met": None if one is None else one >= SERVER_VS_BARE,
        },
        "rps_grows_with_workers_at_most_clients": {
            "target": f"each step up to {cores} workers (the cores) >= {WORKER_GROWTH} x",
            "value": growth,
            "met": all(value >= WORKER_GROWTH for value in growth.values()) if growth else None,
        },
        "p99_within_3x_p50_at_1_client": {
            "target": f"p99 / p50 <= {P99_OVER_P50}",
            "value": tails,
            "met": all(value <= P99_OVER_P50 for value in tails.values()) if tails else None,
        },
        "zero_errors": {"target": "0", "value": result["errors_total"]}
        | {"met": result["errors_total"] == 0},
        "rss_growth_under_50_mb": {
            "target": f"< {RSS_GROWTH_MB} MB over the soak",
            "value": rss,
            "met": None if rss is None else rss < RSS_GROWTH_MB,
        },
        "stream_keeps_up": {
            "target": f">= {KEEP_UP:.0%} of {args.stream_fps:g} frames/s on "
            f"{min(args.workers)} worker",
            "value": paced,
            "met": None if paced is None else paced >= KEEP_UP * args.stream_fps,
        },
    }


def print_summary(result: dict[str, Any]) -> None:
    """The baseline, each load point, the stream, the soak, then the targets."""
    bare = result["bare_loop"]
    rounds = ", ".join(f"{round_['photos_per_s']:.1f}" for round_ in bare["rounds"])
    print(f"photos: {result['photos_detail']} ({result['photos_with_face']} with a face)")
    print(f"bare loop: {bare['photos_per_s']:.1f} photos/s (rounds {rounds})")
    for workers, points in result["throughput"].items():
        for key, point in points.items():
            if key.startswith("clients_"):
                print(f"{workers}: {summary_of(point)}")
    for kind in ("unpaced", "paced") if result["stream"] else ():
        run = result["stream"][kind]
        print(
            f"stream {kind}: {run['frames_per_s']:.1f} frames/s, p50 {run['p50_ms']:.1f} ms, "
            f"p99 {run['p99_ms']:.1f} ms, {run['dropped_frames']} dropped, {run['statuses']}"
        )
    soaked = result["soak"]
    if soaked and soaked["rss"].get("growth_mb") is not None:
        rss = soaked["rss"]
        print(
            f"soak {soaked['seconds']:g} s: {soaked['session_predicts_per_s']:.1f} session "
            f"predicts/s, {soaked['churn_cycles']} churn cycles, {soaked['rejected_429']} x 429,"
            f" {soaked['errors']} errors; RSS {rss.get('first_mb'):.1f} -> "
            f"{rss.get('last_mb'):.1f} MB (max {rss.get('max_mb'):.1f}, growth "
            f"{rss.get('growth_mb'):+.1f}, trend {rss.get('trend_mb_per_min') or 0:+.2f} MB/min)"
        )
    for name, target in result["targets"].items():
        value = json.dumps(target["value"], default=str)
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        print(f"target {name}: {verdict} ({value}; {target['target']})")
    others = result["other_work_cores"]
    print(f"other work on the machine: mean {others['mean']:.2f}, max {others['max']:.2f} cores")
    machine = result["machine"]
    print(f"load average {machine['load_average_at_start']} -> {machine['load_average_at_end']}")
