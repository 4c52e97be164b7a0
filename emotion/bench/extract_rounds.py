"""The timed rounds of the extraction benchmark: per worker, and extract() end to end.

Apart from the command line and the result (emotion.bench.extract) so that what is timed sits
in one place. `_timed` runs in a fresh spawned process per method and round, so it must stay
a module-level function.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from emotion.bench.extract_photos import (
    DEFAULT_REDUCE,
    copied_tree,
    decode_full,
    decode_reduced,
    load_photos,
)
from emotion.extract.pipeline import extract
from emotion.extract.settings import ExtractSettings
from emotion.facemesh.decode import parse_reduce
from emotion.facemesh.mesh import FaceMeshDetector, quiet_native_logs
from emotion.facemesh.runner import FaceMeshRunner

METHODS = (
    "reference",
    "bare_loop",
    "inference_only",
    "extractor_reduce_auto",
    "extractor_reduce_1",
    "extractor_reduce_4",
)


def _reference_pass(photos: list[bytes]) -> None:
    """Full-resolution decode and a new FaceMesh graph per photo, as the old code did."""
    import mediapipe as mp

    for data in photos:
        rgb = decode_full(data)
        with mp.solutions.face_mesh.FaceMesh(
            static_image_mode=True, max_num_faces=1, refine_landmarks=True
        ) as mesh:
            if rgb is not None:
                mesh.process(rgb)


def _timed(method: str, root: str, limit: int, cpu: int | None) -> dict[str, Any]:
    """One method in this (fresh) process: a warm-up pass, then the timed pass."""
    from emotion.facemesh.mesh import silenced_stderr

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    quiet_native_logs()
    photos = load_photos(Path(root))[: limit or None]
    tasks = [task for task, _ in photos]
    blobs = [blob for _, blob in photos]
    warm = max(1, min(10, len(photos)))
    with silenced_stderr():
        if method == "reference":
            _reference_pass(blobs[:2])
            started, cpu_started = time.perf_counter(), time.process_time()
            _reference_pass(blobs)
        elif method == "bare_loop":
            import mediapipe as mp

            with mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True
            ) as mesh:

                def full_decode_and_mesh(data: bytes) -> None:
                    rgb = decode_full(data)
                    if rgb is not None:
                        mesh.process(rgb)

                for data in blobs[:warm]:
                    full_decode_and_mesh(data)
                started, cpu_started = time.perf_counter(), time.process_time()
                for data in blobs:
                    full_decode_and_mesh(data)
        elif method == "inference_only":
            detector = FaceMeshDetector()
            decoded = [decode_reduced(data, DEFAULT_REDUCE) for data in blobs]
            inputs: list[np.ndarray] = [rgb for rgb in decoded if rgb is not None]
            for rgb in inputs[:warm]:
                detector.landmarks(rgb)
            started, cpu_started = time.perf_counter(), time.process_time()
            for rgb in inputs:
                detector.landmarks(rgb)
            detector.close()
        else:
            reduce = parse_reduce(method.removeprefix("extractor_reduce_"))
            runner = FaceMeshRunner(reduce=reduce, video_stride=1, video_max_frames=1)
            for task in tasks[:warm]:
                runner.run(task)
            started, cpu_started = time.perf_counter(), time.process_time()
            for task in tasks:
                runner.run(task)
            runner.close()
    seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
    images = len(inputs) if method == "inference_only" else len(photos)
    return _rate(images, seconds, cpu_seconds)


def per_worker_rounds(root: Path, rounds: int, limit: int, cpu: int | None) -> dict[str, Any]:
    """Every method in a fresh process per round, alternating; medians and every round."""
    runs: dict[str, list[dict[str, Any]]] = {method: [] for method in METHODS}
    context = get_context("spawn")
    for round_index in range(rounds):
        order = METHODS if round_index % 2 == 0 else tuple(reversed(METHODS))
        for method in order:
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                rate = pool.submit(_timed, method, str(root), limit, cpu).result()
            runs[method].append(rate)
            print(f"  round {round_index + 1} {method:24s} {rate['images_per_s']:7.1f} images/s")
    medians = {
        method: {
            "images_per_s": statistics.median(run["images_per_s"] for run in values),
            "images_per_cpu_s": statistics.median(run["images_per_cpu_s"] for run in values),
            "rounds": [run["images_per_s"] for run in values],
            "images": values[0]["images"],
        }
        for method, values in runs.items()
    }
    reference, bare = medians["reference"], medians["bare_loop"]
    for method, figures in medians.items():
        if method == "reference":
            continue
        figures["x_reference"] = round(figures["images_per_s"] / reference["images_per_s"], 2)
        figures["x_bare_loop"] = round(figures["images_per_s"] / bare["images_per_s"], 2)
        figures["x_reference_by_round"] = [
            round(a / b, 2) for a, b in zip(figures["rounds"], reference["rounds"], strict=True)
        ]
        figures["x_reference_median_of_rounds"] = statistics.median(figures["x_reference_by_round"])
    return medians


def bench_end_to_end(root: Path, workers: int, scratch: Path) -> dict[str, Any]:
    """One extract() run over the tree with `workers` workers, and its rates."""
    output = scratch / f"w{workers}.h5"
    settings = ExtractSettings(
        root=root,
        output=output,
        classes="seven",
        workers=workers,
        progress="none",
        max_per_archive=10**9,
        overwrite=True,
    )
    started = time.perf_counter()
    report = extract(settings)
    seconds = time.perf_counter() - started
    output.unlink()
    run = report["run"]
    return {
        **_rate(report["totals"]["sampled"], seconds),
        "seconds_to_first_result": run["seconds_to_first_result"],
        "steady_images_per_s": run["steady_images_per_s"],
        "faces": report["rows"],
    }


def end_to_end_rounds(root: Path, copies: int, workers: list[int], rounds: int) -> dict[str, Any]:
    """extract() with each worker count, alternating over the rounds; medians and every round."""
    runs: dict[str, list[dict[str, Any]]] = {f"workers_{count}": [] for count in workers}
    with tempfile.TemporaryDirectory() as scratch:
        tree = copied_tree(root, copies, Path(scratch) / "tree")
        for round_index in range(rounds):
            order = workers if round_index % 2 == 0 else list(reversed(workers))
            for count in order:
                rate = bench_end_to_end(tree, count, Path(scratch))
                runs[f"workers_{count}"].append(rate)
                print(f"  round {round_index + 1} extract() {count} worker(s): {rate}")
        shutil.rmtree(tree)
    return {
        key: {
            "images_per_s": statistics.median(run["images_per_s"] for run in values),
            "steady_images_per_s": statistics.median(run["steady_images_per_s"] for run in values),
            "seconds_to_first_result": statistics.median(
                run["seconds_to_first_result"] for run in values
            ),
            "rounds": [run["images_per_s"] for run in values],
            "images": values[0]["images"],
            "faces": values[0]["faces"],
        }
        for key, values in runs.items()
    }


def _rate(images: int, seconds: float, cpu_seconds: float | None = None) -> dict[str, Any]:
    """Images/s of wall time, and (in-process runs) images per CPU-second of this process."""
    rate: dict[str, Any] = {
        "images": images,
        "seconds": round(seconds, 3),
        "images_per_s": round(images / seconds, 2) if seconds > 0 else None,
    }
    if cpu_seconds:
        rate["images_per_cpu_s"] = round(images / cpu_seconds, 2)
    return rate
