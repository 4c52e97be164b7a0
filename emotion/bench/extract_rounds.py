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

from emotion.bench.extract_legacy import LegacyFailed, LegacySide, run_legacy
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
from emotion.facemesh.mesh import quiet_native_logs, silenced_stderr
from emotion.facemesh.runner import FaceMeshRunner

LEGACY = "legacy_facemesh"
# Timed in this environment; LEGACY runs in the side one (emotion.bench.extract_legacy).
METHODS = (
    "bare_loop",
    "inference_only",
    "extractor_reduce_auto",
    "extractor_reduce_1",
    "extractor_reduce_4",
)


def _timed(method: str, root: str, limit: int, cpu: int | None) -> dict[str, Any]:
    """One method in this (fresh) process: a warm-up pass, then the timed pass."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    quiet_native_logs()
    photos = load_photos(Path(root))[: limit or None]
    tasks = [task for task, _ in photos]
    blobs = [blob for _, blob in photos]
    warm = max(1, min(10, len(photos)))
    images = len(photos)
    with silenced_stderr():
        if method == "bare_loop":
            from emotion.facemesh.bare import BareLandmarker

            bare = BareLandmarker()

            def full_decode_and_detect(data: bytes) -> None:
                rgb = decode_full(data)
                if rgb is not None:
                    bare.detect(rgb)

            for data in blobs[:warm]:
                full_decode_and_detect(data)
            started, cpu_started = time.perf_counter(), time.process_time()
            for data in blobs:
                full_decode_and_detect(data)
            bare.close()
        elif method == "inference_only":
            from emotion.facemesh.landmarker import Landmarker

            detector = Landmarker()
            decoded = [decode_reduced(data, DEFAULT_REDUCE) for data in blobs]
            inputs: list[np.ndarray] = [rgb for rgb in decoded if rgb is not None]
            images = len(inputs)
            for rgb in inputs[:warm]:
                detector.find(rgb)
            started, cpu_started = time.perf_counter(), time.process_time()
            for rgb in inputs:
                detector.find(rgb)
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
    return _rate(images, seconds, cpu_seconds)


def _timed_legacy(side: LegacySide, root: Path, limit: int, cpu: int | None) -> dict[str, Any]:
    """The legacy graph in a fresh side-environment process, pinned like the others."""
    photos = load_photos(root)[: limit or None]
    output = run_legacy(side, photos, DEFAULT_REDUCE, cpu)
    rate = _rate(output["photos"], output["seconds"], output["cpu_seconds"])
    rate["per_photo_ms_median"] = round(1000 * statistics.median(output["per_photo_seconds"]), 2)
    return rate


def per_worker_rounds(
    root: Path, rounds: int, limit: int, cpu: int | None, side: LegacySide
) -> dict[str, Any]:
    """Every method in a fresh process per round, alternating; medians and every round.

    The legacy graph takes its turn among the others when the side environment can run it;
    otherwise (or when it fails) its entry says why it was skipped."""
    methods = METHODS if side.skipped else (LEGACY, *METHODS)
    runs: dict[str, list[dict[str, Any]]] = {method: [] for method in methods}
    skipped = side.skipped
    context = get_context("spawn")
    for round_index in range(rounds):
        order = methods if round_index % 2 == 0 else tuple(reversed(methods))
        for method in order:
            if method == LEGACY:
                if skipped:
                    continue
                try:
                    rate = _timed_legacy(side, root, limit, cpu)
                except LegacyFailed as error:
                    skipped = f"the legacy script failed: {error}"
                    print(f"  {LEGACY} skipped: {skipped}")
                    continue
            else:
                with ProcessPoolExecutor(1, mp_context=context) as pool:
                    rate = pool.submit(_timed, method, str(root), limit, cpu).result()
            runs[method].append(rate)
            print(f"  round {round_index + 1} {method:24s} {rate['images_per_s']:7.1f} images/s")
    medians: dict[str, Any] = {
        method: _medians(values)
        for method, values in runs.items()
        if method != LEGACY or not skipped
    }
    legacy = medians.get(LEGACY)
    for method, figures in medians.items():
        if method != "bare_loop":
            _ratios(figures, medians["bare_loop"], "bare_loop")
        if legacy is not None and method != LEGACY:
            _ratios(figures, legacy, "legacy")
    if skipped:
        medians[LEGACY] = {"skipped": skipped, "python": str(side.python)}
    else:
        medians[LEGACY].update(python=str(side.python), mediapipe_version=side.version)
    return medians


def _medians(values: list[dict[str, Any]]) -> dict[str, Any]:
    """The median rates of one method's rounds, and every round's rate."""
    figures = {
        "images_per_s": statistics.median(run["images_per_s"] for run in values),
        "images_per_cpu_s": statistics.median(run["images_per_cpu_s"] for run in values),
        "rounds": [run["images_per_s"] for run in values],
        "images": values[0]["images"],
    }
    if "per_photo_ms_median" in values[0]:
        figures["per_photo_ms_median"] = statistics.median(
            run["per_photo_ms_median"] for run in values
        )
    return figures


def _ratios(figures: dict[str, Any], baseline: dict[str, Any], name: str) -> None:
    """`figures` over `baseline`: of the medians, round by round, and the median of those."""
    figures[f"x_{name}"] = round(figures["images_per_s"] / baseline["images_per_s"], 2)
    by_round = [round(a / b, 2) for a, b in zip(figures["rounds"], baseline["rounds"], strict=True)]
    figures[f"x_{name}_by_round"] = by_round
    figures[f"x_{name}_median_of_rounds"] = statistics.median(by_round)


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
