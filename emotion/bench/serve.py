"""`python -m emotion.bench serve`: emotion-serve's throughput, latency, stream rate and memory.

In one run, on this machine (the client threads share its cores with the server):
  bare    decode + FaceMesh + model on the photos, one thread, no HTTP, before and after the
          servers: their mean photos/s is the baseline the server is held to;
  load    POST /v1/predict in closed loops from 1, 2 and 8 keep-alive clients against
          `--workers 1` and `--workers 2`: requests/s, p50/p99 latency, errors;
  stream  one /v1/stream client on the one-worker server: frames/s as fast as replies come,
          and paced at 15 frames/s (does it keep up?);
  soak    a personal-baseline model under session predicts from 2 clients and session churn
          (create, enroll, predict, delete; some left to expire under a short TTL and a small
          cap, 429s counted apart from errors), the server's RSS sampled every few seconds.
Without --model / --baseline-model, tiny models are trained on SYNTHETIC landmarks first:
a request's cost is FaceMesh's, whatever the model learnt.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from emotion.bench.serve_inputs import (
    Photos,
    fixture_photos,
    frames_from,
    sample_photos,
    train_tiny,
)
from emotion.bench.serve_load import (
    CpuUse,
    Server,
    closed_loop,
    load_average,
    server_timing,
    stream_run,
)
from emotion.bench.serve_soak import soak

DEFAULT_ROOT = Path("../shared/data/aihub_sample")
DEFAULT_OUTPUT = Path("outputs/bench/serve.json")
SERVER_VS_BARE = 0.8
WORKER_GROWTH = 1.1
P99_OVER_P50 = 3.0
RSS_GROWTH_MB = 50.0
KEEP_UP = 0.95  # share of the paced frame rate that counts as keeping up


def screen(engine: Any, photos: list[bytes], source: str, detail: str) -> Photos:
    """Drop what the server would refuse (a 4xx is the client's fault, not the server's)."""
    from emotion.serve.errors import ApiError

    usable, faces = [], []
    for data in photos:
        try:
            found = engine.find_face(data)
        except ApiError:
            continue
        usable.append(data)
        if found.landmarks is not None:
            faces.append(data)
    if not faces:
        raise SystemExit(f"FaceMesh finds no face in any of {detail}")
    return Photos(usable, faces, source, detail, len(photos) - len(usable))


def load_photos(root: Path, limit: int, engine: Any) -> Photos:
    """The sample's photos when it is there, else the fixture face and a few variants."""
    photos = sample_photos(root, limit)
    if photos:
        return screen(engine, photos, "sample", f"{len(photos)} photos from {root}/Training")
    print(f"no photo sample at {root}: using the fixture face and variants of it")
    variants = fixture_photos()
    return screen(engine, variants, "fixture", f"{len(variants)} variants of the fixture face")


def bare_loop(engine: Any, photos: list[bytes], seconds: float) -> dict[str, Any]:
    """What a request costs without HTTP: decode + FaceMesh + model, sequential, one thread."""
    from emotion.bench.serve_load import percentiles

    load_at_start = load_average()
    cpu = CpuUse()
    latencies, faces = [], 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds or len(latencies) < len(photos):
        data = photos[len(latencies) % len(photos)]
        begun = time.perf_counter()
        found = engine.find_face(data)
        if found.landmarks is not None:
            engine.probabilities(found.landmarks, found.image_size, None)
            faces += 1
        latencies.append(time.perf_counter() - begun)
    wall_s = time.perf_counter() - started
    return {
        "photos": len(latencies),
        "faces": faces,
        "wall_s": wall_s,
        "photos_per_s": len(latencies) / wall_s,
        **percentiles(latencies),
        "cpu_cores_used": cpu.cores(),
        "load_average_at_start": load_at_start,
        "load_average_at_end": load_average(),
    }


def model_info(server: Server, trained_here: bool) -> dict[str, Any]:
    info = server.get_json("/v1/model")
    return {
        "path": server.command[3],
        "description": info["model"],
        "baseline": info["baseline"],
        "trained_on_synthetic": info["trained_on_synthetic"],
        "trained_here": trained_here,
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m emotion.bench serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--model", type=Path, help="a single-photo run (default: train a tiny one)")
    parser.add_argument(
        "--baseline-model",
        type=Path,
        help="a data.baseline=enrolled run for the soak (default: train a tiny one)",
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="AI Hub-style sample")
    parser.add_argument("--photos", type=int, default=100, help="photos held in memory")
    parser.add_argument("--seconds", type=float, default=15.0, help="per load point")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 2, 8])
    parser.add_argument(
        "--stream-seconds", type=float, default=15.0, help="per stream run (0: no stream)"
    )
    parser.add_argument("--stream-fps", type=float, default=15.0, help="the paced stream's rate")
    parser.add_argument("--soak-seconds", type=float, default=300.0, help="0: no soak")
    parser.add_argument("--session-ttl", type=float, default=5.0, help="the soak server's")
    parser.add_argument("--max-sessions", type=int, default=8, help="the soak server's")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    import torch

    torch.set_num_threads(1)  # as the server runs its model: one face a request
    load_at_start = load_average()
    with tempfile.TemporaryDirectory(prefix="bench-serve-") as scratch:
        result = measure(args, Path(scratch))
    result["machine"]["load_average_at_start"] = load_at_start
    result["machine"]["load_average_at_end"] = load_average()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(rounded(result), indent=2) + "\n")
    print_summary(result)
    print(f"wrote {args.output}")


def measure(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    """Models, photos, the bare loop, the servers under load, the stream, the bare loop again,
    then the soak; every part with the load averages it ran under."""
    from emotion.facemesh.mesh import quiet_native_logs
    from emotion.inference.ensemble import load_model
    from emotion.serve.engine import Engine
    from emotion.serve.settings import ServeSettings

    quiet_native_logs()
    model = args.model or train_tiny(workdir, "plain")
    trained = load_model(str(model))
    if trained.preprocessing.uses_baseline:
        raise SystemExit(f"--model {model} needs a reference face: give a data.baseline=none run")
    engine = Engine(trained, ServeSettings())
    photos = load_photos(args.root, args.photos, engine)
    frames = screen(engine, frames_from(photos.faces), photos.source, "the stream frames").faces
    bare = [bare_loop(engine, photos.usable, args.seconds)]
    engine.close()  # its graph would hold memory and a thread while the servers run

    models: dict[str, Any] = {}
    throughput: dict[str, Any] = {}
    stream: dict[str, Any] | None = None
    for workers in args.workers:
        log = workdir / f"serve_workers{workers}.log"
        with Server(model, "--workers", str(workers), log=log) as server:
            models["throughput"] = model_info(server, args.model is None)
            throughput[f"workers_{workers}"] = load_points(args, server, workers, photos.usable)
            if workers == min(args.workers) and args.stream_seconds > 0:
                stream = {"workers": workers, "frame_size": [640, 480], "frames": len(frames)}
                stream["unpaced"] = stream_run(server, frames, args.stream_seconds, None)
                stream["paced"] = stream_run(server, frames, args.stream_seconds, args.stream_fps)
    engine = Engine(trained, ServeSettings())
    engine.find_face(photos.usable[0])  # warm, as the first round was by the screening
    bare.append(bare_loop(engine, photos.usable, args.seconds))
    engine.close()
    soaked = soak_part(args, workdir, photos.faces, models) if args.soak_seconds > 0 else None
    return result_json(args, photos, models, bare, throughput, stream, soaked)


def load_points(
    args: argparse.Namespace, server: Server, workers: int, photos: list[bytes]
) -> dict[str, Any]:
    """Each client count against one server, after a short unmeasured warm-up at that count."""
    points: dict[str, Any] = {
        "started_in_s": server.started_in_s,
        "rss_mb_at_start": server.rss_mb(),
    }
    points["server_timing"] = server_timing(server.port, photos, min(100, 10 * len(photos)))
    for clients in args.clients:
        warmup = closed_loop(server, photos, clients, min(2.0, args.seconds / 3))
        point = closed_loop(server, photos, clients, args.seconds)
        point["warmup_errors"] = warmup["errors"]
        point["rss_mb_at_end"] = server.rss_mb()
        points[f"clients_{clients}"] = point
        print(f"{workers} workers: {summary_of(point)}", flush=True)
    return points


def soak_part(
    args: argparse.Namespace, workdir: Path, faces: list[bytes], models: dict[str, Any]
) -> dict[str, Any]:
    """The personal-baseline model under sessions, on as many workers as cores (up to 2)."""
    baseline_model = args.baseline_model or train_tiny(
        workdir, "enrolled", "data.baseline=enrolled"
    )
    workers = min(2, os.cpu_count() or 1)
    options = ("--session-ttl", str(args.session_ttl), "--max-sessions", str(args.max_sessions))
    log = workdir / "serve_soak.log"
    with Server(baseline_model, *options, "--workers", str(workers), log=log) as server:
        models["soak"] = model_info(server, args.baseline_model is None)
        if not models["soak"]["baseline"] or models["soak"]["baseline"] == "none":
            raise SystemExit(f"--baseline-model {baseline_model} is not a personal-baseline run")
        soaked = soak(
            server,
            faces,
            args.soak_seconds,
            warmup_s=min(30.0, args.soak_seconds / 5),
            every_s=min(5.0, max(0.5, args.soak_seconds / 12)),
            ttl_s=args.session_ttl,
        )
        return soaked | {
            "workers": workers,
            "session_ttl_s": args.session_ttl,
            "max_sessions": args.max_sessions,
            "started_in_s": server.started_in_s,
        }


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
