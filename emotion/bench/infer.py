"""`python -m emotion.bench infer`: model inference speed and the end-to-end predict rate.

In one run, on this machine's CPU:
  model     the deployable raw-landmark model (normalisation in the graph) in torch eager,
            torch.compile (skipped with the reason when it fails) and onnxruntime: single-sample
            latency (p50/p99) and batch throughput;
  baseline  the personal-baseline (enrolled) graph, which also takes a reference photo and
            normalises it in the graph, against the single-photo graph: single-sample
            onnxruntime latency, alternating rounds, and their ratio;
  predict   `emotion-predict`'s whole path on photos (decode + FaceMesh + batched model + CSV)
            against the bare extraction loop (the extractor's FaceMeshRunner alone) on the same
            files, and the model's share of the per-photo time.
Without --ckpt the model is the reference size (width 512, depth 3, head 256; 2.45 M
parameters) with random weights: speed does not depend on what was learnt.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from emotion.bench.infer_backends import (
    bench_backends,
    bench_baseline_graph,
    reference_checkpoint,
)

DEFAULT_ROOT = Path("../shared/data/aihub_sample")
DEFAULT_OUTPUT = Path("outputs/bench/infer.json")
FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "astronaut.jpg"

log = logging.getLogger(__name__)


def photo_files(root: Path, limit: int, folder: Path) -> tuple[list[Path], str]:
    """Up to `limit` photos written to `folder`: the real-face sample, else the fixture."""
    folder.mkdir(parents=True, exist_ok=True)
    if root.is_dir():
        from emotion.bench.extract_photos import load_photos

        photos = load_photos(root)
        step = max(1, len(photos) // limit)
        chosen = photos[::step][:limit]
        paths = []
        for index, (_, data) in enumerate(chosen):
            path = folder / f"photo_{index:04d}.jpg"
            path.write_bytes(data)
            paths.append(path)
        return paths, f"{len(paths)} photos from {root}"
    print(f"no photo sample at {root}: using the fixture face, copied {limit} times")
    data = FIXTURE.read_bytes()
    paths = []
    for index in range(limit):
        path = folder / f"photo_{index:04d}.jpg"
        path.write_bytes(data)
        paths.append(path)
    return paths, f"the fixture image {FIXTURE.name} x {limit}"


def bench_end_to_end(ckpt: Path, photos: list[Path], workdir: Path) -> dict[str, Any]:
    """emotion-predict's whole path vs the extractor's FaceMeshRunner alone, same files."""
    from emotion.facemesh.mesh import quiet_native_logs
    from emotion.facemesh.runner import FaceMeshRunner
    from emotion.predict.inputs import collect_inputs
    from emotion.predict.pipeline import predict

    quiet_native_logs()
    media = collect_inputs([str(photos[0].parent)]).media
    started = time.perf_counter()
    runner = FaceMeshRunner(reduce=2, video_stride=1, video_max_frames=1)
    build_s = time.perf_counter() - started
    runner.run(media[0])  # warm: first inference, file cache
    faces = 0
    loop_started = time.perf_counter()
    for item in media:
        faces += len(runner.run(item).faces)
    loop_s = time.perf_counter() - loop_started
    runner.close()
    bare = {
        "photos": len(media),
        "faces": faces,
        "graph_build_s": build_s,
        "loop_s": loop_s,
        "photos_per_s": len(media) / loop_s,
        "photos_per_s_with_build": len(media) / (loop_s + build_s),
    }
    # Warm-up run on one photo (imports, first inference), then the timed run on all of them.
    predict(ckpt, [str(photos[0])], workdir / "warmup.csv")
    started = time.perf_counter()
    summary = predict(ckpt, [str(photos[0].parent)], workdir / "predictions.csv")
    total_s = time.perf_counter() - started
    end_to_end = {
        "photos": summary["photos"],
        "faces": summary["faces"],
        "total_s": total_s,
        "photos_per_s": summary["photos"] / total_s,
        "model_s": summary["model_seconds"],
        "model_share_of_time": summary["model_seconds"] / total_s,
        "per_photo_ms": 1000 * total_s / summary["photos"],
    }
    return {
        "bare_extraction_loop": bare,
        "predict_end_to_end": end_to_end,
        "predict_vs_bare_loop_with_build": end_to_end["photos_per_s"]
        / bare["photos_per_s_with_build"],
        "predict_vs_bare_loop": end_to_end["photos_per_s"] / bare["photos_per_s"],
    }


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m emotion.bench infer", description=__doc__)
    parser.add_argument("--ckpt", type=Path, help="default: reference size, random weights")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="AI Hub-style sample")
    parser.add_argument("--photos", type=int, default=300, help="photos for the predict rate")
    parser.add_argument("--single-iterations", type=int, default=2000)
    parser.add_argument("--batch", type=int, default=1024)
    parser.add_argument("--batch-iterations", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true", help="skip torch.compile")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="intra-op threads of torch and onnxruntime (default 1: a single sample is too "
        "small to split, and shared cores make multi-threaded timings erratic)",
    )
    return parser


def main(argv: list[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    torch.set_num_threads(args.threads)
    backends, end_to_end, described = measure(args)
    result = result_json(args, backends, end_to_end, described)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    print_summary(backends, end_to_end, described)
    print(f"wrote {args.output}")


def measure(args: argparse.Namespace) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The model in each backend, then the predict rate; and which photos it ran on."""
    with tempfile.TemporaryDirectory(prefix="bench-infer-") as temporary:
        workdir = Path(temporary)
        ckpt = args.ckpt or reference_checkpoint(workdir / "reference.ckpt")
        backends = bench_backends(
            ckpt,
            workdir,
            args.single_iterations,
            args.batch,
            args.batch_iterations,
            not args.no_compile,
        )
        backends["baseline_graph"] = bench_baseline_graph(workdir, args.single_iterations // 4)
        photos, described = photo_files(args.root, args.photos, workdir / "photos")
        end_to_end = bench_end_to_end(ckpt, photos, workdir)
    return backends, end_to_end, described


def result_json(
    args: argparse.Namespace,
    backends: dict[str, Any],
    end_to_end: dict[str, Any],
    described: str,
) -> dict[str, Any]:
    """The figures written to --output, with the machine and the targets."""
    e2e = end_to_end["predict_end_to_end"]
    onnx_single = backends.get("onnxruntime", {}).get("single", {}).get("p50_ms")
    return {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "load_average": os.getloadavg(),
            "torch": torch.__version__,
        },
        "model": str(args.ckpt) if args.ckpt else "reference size, random weights",
        "photos": described,
        "backends": backends,
        "end_to_end": end_to_end,
        "targets": {
            "model_share_under_2_percent": e2e["model_share_of_time"] < 0.02,
            "onnxruntime_single_p50_under_0.3_ms": None
            if onnx_single is None
            else onnx_single < 0.3,
            "enrolled_graph_within_1.5x_single_photo": None
            if "enrolled_x_single_photo" not in backends.get("baseline_graph", {})
            else backends["baseline_graph"]["enrolled_x_single_photo"] <= 1.5,
        },
    }


def print_summary(backends: dict[str, Any], end_to_end: dict[str, Any], described: str) -> None:
    """One line per backend, then the bare extraction loop and the predict rate."""
    for name, figures in backends.items():
        if "skipped" in figures:
            print(f"{name:15s} skipped: {figures['skipped']}")
            continue
        if name == "baseline_graph":
            medians = figures["p50_ms_median"]
            print(
                f"{name:15s} enrolled p50 {medians['enrolled']:.3f} ms vs single photo "
                f"{medians['single_photo']:.3f} ms: {figures['enrolled_x_single_photo']:.2f}x"
            )
            continue
        single, batch = figures["single"], figures["batch"]
        print(
            f"{name:15s} single p50 {single['p50_ms']:.3f} ms  p99 {single['p99_ms']:.3f} ms  "
            f"batch {batch['batch']}: {batch['rows_per_s']:,.0f} rows/s"
        )
    bare = end_to_end["bare_extraction_loop"]
    e2e = end_to_end["predict_end_to_end"]
    print(
        f"bare extraction loop: {bare['photos_per_s']:.1f} photos/s "
        f"({bare['photos_per_s_with_build']:.1f} with graph build)"
    )
    print(
        f"predict end to end:   {e2e['photos_per_s']:.1f} photos/s, model "
        f"{100 * e2e['model_share_of_time']:.2f}% of the time ({described})"
    )
