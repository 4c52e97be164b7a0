"""`python -m emotion.bench serve`: emotion-serve's throughput, latency, stream rate and memory.

In one run, on this machine (the client threads share its cores with the server):
  bare    decode + FaceMesh + model on the photos, one thread, no HTTP, before and after the
          servers: their mean photos/s is the baseline the server is held to;
  load    POST /v1/predict in closed loops from 1, 2 and 8 keep-alive clients against
          `--workers 1` and `--workers 2`: requests/s, p50/p99 latency, errors;
  stream  one /v1/stream client on the one-worker server: frames/s as fast as replies come,
          and paced at 15 frames/s (does it keep up?);
  scale   /v1/predict/landmarks against /v1/predict from one client, and `--processes 2`
          against `--processes 1` at 8 clients (emotion.bench.serve_scale);
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
from emotion.bench.serve_load import closed_loop, server_timing, stream_run
from emotion.bench.serve_report import print_summary, result_json, rounded, summary_of
from emotion.bench.serve_scale import (
    landmark_bodies,
    landmarks_vs_images,
    processes_points,
    stream_landmarks_vs_frames,
)
from emotion.bench.serve_server import CpuUse, Server, load_average
from emotion.bench.serve_soak import soak

DEFAULT_ROOT = Path("../shared/data/aihub_sample")
DEFAULT_OUTPUT = Path("outputs/bench/serve.json")


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
            engine.probabilities(found, None)
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
    parser.add_argument(
        "--scale-seconds", type=float, default=10.0, help="per scale-out point (0: none)"
    )
    parser.add_argument("--scale-rounds", type=int, default=3, help="alternating scale rounds")
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
    bodies = landmark_bodies(engine, photos.faces)
    bare = [bare_loop(engine, photos.usable, args.seconds)]
    engine.close()  # its graph would hold memory and a thread while the servers run

    models: dict[str, Any] = {}
    throughput: dict[str, Any] = {}
    stream: dict[str, Any] | None = None
    scale: dict[str, Any] = {}
    for workers in args.workers:
        log = workdir / f"serve_workers{workers}.log"
        with Server(model, "--workers", str(workers), log=log) as server:
            models["throughput"] = model_info(server, args.model is None)
            throughput[f"workers_{workers}"] = load_points(args, server, workers, photos.usable)
            if workers == min(args.workers) and args.stream_seconds > 0:
                stream = {"workers": workers, "frame_size": [640, 480], "frames": len(frames)}
                stream["unpaced"] = stream_run(server, frames, args.stream_seconds, None)
                stream["paced"] = stream_run(server, frames, args.stream_seconds, args.stream_fps)
            if workers == min(args.workers) and args.scale_seconds > 0:
                scale["landmarks_vs_images"] = landmarks_vs_images(
                    server, photos.faces, bodies, args.scale_seconds, args.scale_rounds
                )
                scale["stream_landmarks_vs_frames"] = stream_landmarks_vs_frames(
                    server, frames, bodies, args.scale_seconds, args.scale_rounds
                )
    if args.scale_seconds > 0:
        scale["processes"] = processes_points(
            model, photos.usable, workdir, args.scale_seconds, args.scale_rounds
        )
    engine = Engine(trained, ServeSettings())
    engine.find_face(photos.usable[0])  # warm, as the first round was by the screening
    bare.append(bare_loop(engine, photos.usable, args.seconds))
    engine.close()
    soaked = soak_part(args, workdir, photos.faces, models) if args.soak_seconds > 0 else None
    result = result_json(args, photos, models, bare, throughput, stream, soaked)
    result["scale"] = scale
    for name, part in scale.items():
        result["targets"][name] = {
            "target": part["target"],
            "value": part["ratio"],
            "met": part["met"],
        }
    return result


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
