"""`python -m emotion.bench extract`: extractor speed against two baselines of the same run.

Baselines, on the same photos:
  reference  full-resolution decode and a NEW FaceMesh graph per image (the old code);
  bare_loop  full-resolution decode + FaceMesh in a loop with one reused graph, photos
             already in memory (what one worker cannot beat without decoding less).
The extractor is measured per worker (its TaskRunner: zip read, truncation check, upright
reduced decode, FaceMesh, header size) and end to end (`extract()` with 1 and 2 workers,
startup included). Reduced decoding is checked against full resolution: landmark differences
in normalised coordinates.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from emotion.extract.landmarks import (
    FaceMeshDetector,
    TaskRunner,
    quiet_native_logs,
    silenced_stderr,
)
from emotion.extract.pipeline import extract
from emotion.extract.plan import Task
from emotion.extract.settings import ExtractSettings
from emotion.extract.sources import aihub_containers, list_members

DEFAULT_ROOT = Path("../shared/data/aihub_sample")
DEFAULT_OUTPUT = Path("outputs/bench/extract.json")


def load_photos(root: Path) -> list[tuple[Task, bytes]]:
    """Every image member of the photo archives, as extractor tasks and as bytes."""
    photos = []
    for container in aihub_containers(root):
        if container.kind != "zip":
            continue
        with zipfile.ZipFile(container.path) as archive:
            for member in list_members(container):
                if member.kind == "image":
                    task = Task(
                        source=f"{container.name}::{member.name}",
                        path=str(container.path),
                        member=member.key,
                        video=False,
                        archive=container.name,
                        label=0,
                        subject="",
                        split=container.split,
                    )
                    photos.append((task, archive.read(member.key)))
    return photos


def decode_full(data: bytes) -> np.ndarray | None:
    import cv2

    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def bench_reference(photos: list[bytes]) -> dict[str, Any]:
    """The old method: a new FaceMesh graph for every image."""
    import mediapipe as mp

    started, cpu = time.perf_counter(), time.process_time()
    with silenced_stderr():
        for data in photos:
            rgb = decode_full(data)
            with mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True
            ) as mesh:
                if rgb is not None:
                    mesh.process(rgb)
    return _rate(len(photos), time.perf_counter() - started, time.process_time() - cpu)


def bench_bare_loop(
    photos: list[bytes], detector: FaceMeshDetector
) -> tuple[dict[str, Any], list[np.ndarray | None]]:
    """Full-resolution decode + inference with one reused graph; also the reference landmarks."""
    found = []
    started, cpu = time.perf_counter(), time.process_time()
    for data in photos:
        rgb = decode_full(data)
        found.append(None if rgb is None else detector.landmarks(rgb))
    return _rate(len(photos), time.perf_counter() - started, time.process_time() - cpu), found


def bench_runner(tasks: list[Task], reduce: int) -> tuple[dict[str, Any], list[np.ndarray | None]]:
    """One extractor worker's per-image path, graph built before the clock starts."""
    runner = TaskRunner(reduce=reduce, video_stride=1, video_max_frames=1)
    runner.run(tasks[0])  # warm: open the first archive, first inference
    found: list[np.ndarray | None] = []
    started, cpu = time.perf_counter(), time.process_time()
    for task in tasks:
        outcome = runner.run(task)
        found.append(outcome.rows[0][1] if outcome.rows else None)
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu
    runner.close()
    return _rate(len(tasks), seconds, cpu_seconds), found


def tolerance(full: list[np.ndarray | None], reduced: list[np.ndarray | None]) -> dict[str, Any]:
    both = [(a, b) for a, b in zip(full, reduced, strict=True) if a is not None and b is not None]
    only_one = sum((a is None) != (b is None) for a, b in zip(full, reduced, strict=True))
    if not both:
        return {"faces_compared": 0, "face_found_in_only_one": only_one}
    difference = np.abs(np.stack([a - b for a, b in both]))
    xy, z = difference[..., :2], difference[..., 2]
    per_face_mean = xy.mean(axis=(1, 2))
    return {
        "faces_compared": len(both),
        "face_found_in_only_one": int(only_one),
        "xy_mean_abs": round(float(xy.mean()), 5),
        "xy_p99_abs": round(float(np.percentile(xy, 99)), 5),
        "xy_max_abs": round(float(xy.max()), 5),
        "xy_worst_face_mean_abs": round(float(per_face_mean.max()), 5),
        "z_mean_abs": round(float(z.mean()), 5),
    }


def copied_tree(root: Path, copies: int, into: Path) -> Path:
    """An AI Hub tree holding each photo archive `copies` times (symlinks), for longer runs."""
    for container in aihub_containers(root):
        split_dir = into / container.path.parent.name
        split_dir.mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            stem = container.path.stem
            name = f"{stem}{'' if copy == 0 else f'_copy{copy}'}{container.path.suffix}"
            (split_dir / name).symlink_to(container.path.resolve())
    return into


def bench_end_to_end(root: Path, workers: int, scratch: Path) -> dict[str, Any]:
    output = scratch / f"w{workers}.h5"
    settings = ExtractSettings(
        root=root,
        output=output,
        classes="seven",
        workers=workers,
        progress="none",
        max_per_archive=10**9,
    )
    started = time.perf_counter()
    report = extract(settings)
    seconds = time.perf_counter() - started
    return {**_rate(report["totals"]["sampled"], seconds), "faces": report["rows"]}


def _rate(images: int, seconds: float, cpu_seconds: float | None = None) -> dict[str, Any]:
    """Images/s of wall time, and (in-process runs) images per CPU-second of this process,
    which other load on a shared machine disturbs less."""
    rate = {
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_s": round(images / seconds, 2) if seconds > 0 else None,
    }
    if cpu_seconds:
        rate["images_per_cpu_s"] = round(images / cpu_seconds, 2)
    return rate


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m emotion.bench extract", description=__doc__)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="AI Hub-layout photos")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--reference-limit", type=int, default=100, help="photos for (b)")
    parser.add_argument("--copies", type=int, default=4, help="archive copies for end to end")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    quiet_native_logs()
    if not (args.root / "Training").is_dir() and not (args.root / "Validation").is_dir():
        print(
            f"skipped: no AI Hub-layout photos at {args.root} (the real-face sample); "
            "pass --root DIR holding Training/ and Validation/",
        )
        return
    photos = load_photos(args.root)
    tasks = [task for task, _ in photos]
    data = [blob for _, blob in photos]
    print(f"{len(photos)} photos from {args.root}")
    detector = FaceMeshDetector()
    detector.landmarks(decode_full(data[0]))  # warm
    bare, full_landmarks = bench_bare_loop(data, detector)
    detector.close()
    print(f"bare loop (full decode + one graph): {bare['images_per_s']} images/s")
    reference = bench_reference(data[: args.reference_limit])
    print(f"reference (new graph per image):     {reference['images_per_s']} images/s")
    per_worker: dict[str, Any] = {}
    tolerances: dict[str, Any] = {}
    for reduce in (1, 2, 4):
        rate, found = bench_runner(tasks, reduce)
        per_worker[f"reduce_{reduce}"] = {
            **rate,
            "x_reference": round(rate["images_per_s"] / reference["images_per_s"], 2),
            "x_bare_loop": round(rate["images_per_s"] / bare["images_per_s"], 2),
            "x_reference_cpu": round(rate["images_per_cpu_s"] / reference["images_per_cpu_s"], 2),
            "x_bare_loop_cpu": round(rate["images_per_cpu_s"] / bare["images_per_cpu_s"], 2),
        }
        tolerances[f"reduce_{reduce}_vs_full"] = tolerance(full_landmarks, found)
        print(f"extractor worker, decode 1/{reduce}:      {per_worker[f'reduce_{reduce}']}")
    end_to_end: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as scratch:
        tree = copied_tree(args.root, args.copies, Path(scratch) / "tree")
        for workers in args.workers:
            end_to_end[f"workers_{workers}"] = bench_end_to_end(tree, workers, Path(scratch))
            print(f"extract(), {workers} worker(s): {end_to_end[f'workers_{workers}']}")
        shutil.rmtree(tree)
    one = end_to_end.get("workers_1", {}).get("images_per_s")
    two = end_to_end.get("workers_2", {}).get("images_per_s")
    default = per_worker["reduce_2"]
    result = {
        "command": "python -m emotion.bench extract " + " ".join(argv),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            # Other jobs on the machine slow every figure; ratios within a run stay fair-ish.
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "photos": len(photos),
        "baselines": {"reference": reference, "bare_loop": bare},
        "extractor_per_worker": per_worker,
        "extractor_end_to_end": end_to_end,
        "scaling_2_vs_1_workers": round(two / one, 2) if one and two else None,
        "landmark_tolerance": tolerances,
        "targets": {
            "per_worker_at_least_3.5x_reference": default["x_reference"] >= 3.5,
            "per_worker_not_slower_than_bare_loop": default["x_bare_loop"] >= 1.0,
        },
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({k: result[k] for k in ("scaling_2_vs_1_workers", "targets")}, indent=2))
    print(f"wrote {args.output}")
