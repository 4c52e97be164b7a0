"""`python -m emotion.bench extract`: extractor speed against two baselines of the same run.

Per-worker methods, on the same photos (the real-face sample):
  reference       full-resolution decode and a NEW FaceMesh graph per image (the old code);
  bare_loop       full-resolution decode + FaceMesh.process() (the public API) with one
                  reused graph, photos in memory;
  extractor_*     one extractor worker (FaceMeshRunner: zip read, truncation check, upright
                  decode at decode.reduce, FaceMesh, header size, landmarks to an array);
  inference_only  the extractor's FaceMesh call alone on photos already decoded at the
                  default reduction: the floor of a worker with this graph, so
                  reference / it bounds the ratio.
Each method runs in a fresh process pinned to one core (a worker's share of the machine;
`--no-pin` to lift it), after a warm-up pass; the methods alternate over `--rounds` rounds
and each figure is the median, so a burst of other load hits every method alike.
End to end, `extract()` runs with 1 and 2 workers, alternating, for the scaling.
Landmarks from reduced decoding are compared with full resolution in the features the model
sees (nose_unit), next to two yardsticks: FaceMesh's own change when the photo moves by one
pixel, and the default training noise.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotion.bench.extract_landmarks import landmark_sets, tolerance
from emotion.bench.extract_photos import (
    DEFAULT_REDUCE,
    load_photos,
    photo_sizes,
    upscaled_tree,
)
from emotion.bench.extract_rounds import METHODS, end_to_end_rounds, per_worker_rounds
from emotion.facemesh.mesh import quiet_native_logs

DEFAULT_ROOT = Path("../shared/data/aihub_sample")
DEFAULT_OUTPUT = Path("outputs/bench/extract.json")
TRAINING_NOISE_STD = 0.002  # emotion/conf/data/*.yaml noise_std, in the same nose_unit features
# The stated tolerance for reduced decoding: RMS change of the nose_unit features against a
# full-resolution decode. 1.5x the noise the model is trained to ignore; FaceMesh itself moves
# them by 0.0021 when a 1280x960 photo shifts by one pixel. 1/4 decoding of 1280x960 photos
# (0.0040) is outside it, which is why decode.reduce=auto keeps them at 1/2.
LANDMARK_TOLERANCE_RMS = 1.5 * TRAINING_NOISE_STD
TARGET_X_REFERENCE = 3.5
TARGET_SCALING = 1.8  # "near-linear" read as at least 90 % of 2x


@dataclass(frozen=True)
class Measurements:
    """Every figure of one run, as measured (the result JSON is built from these)."""

    photos: list[bytes]
    cpu: int | None
    per_worker: dict[str, Any]
    tolerances: dict[str, dict[str, Any]]
    end_to_end: dict[str, Any]


def _scaling(end_to_end: dict[str, Any], key: str) -> float | None:
    """2 workers over 1 in `key`, when both ran."""
    one = end_to_end.get("workers_1", {}).get(key)
    two = end_to_end.get("workers_2", {}).get(key)
    return round(two / one, 2) if one and two else None


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m emotion.bench extract", description=__doc__)
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="AI Hub-layout photos")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="photos per method (0: all)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin methods to one core")
    parser.add_argument("--copies", type=int, default=4, help="archive copies for end to end")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--upscale",
        metavar="WxH",
        help="time SYNTHETIC copies of the photos resized to WxH (e.g. 4032x3024, the size of "
        "real AI Hub photos) instead of the photos themselves",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    quiet_native_logs()
    if not (args.root / "Training").is_dir() and not (args.root / "Validation").is_dir():
        print(
            f"skipped: no AI Hub-layout photos at {args.root} (the real-face sample); "
            "pass --root DIR holding Training/ and Validation/",
        )
        return
    if args.upscale:
        size = _parse_size(args.upscale)
        if args.output == DEFAULT_OUTPUT:
            args.output = DEFAULT_OUTPUT.with_name(f"extract-upscaled-{size[0]}x{size[1]}.json")
        with tempfile.TemporaryDirectory() as scratch:
            print(f"writing SYNTHETIC {size[0]}x{size[1]} copies of the photos (upscaled) ...")
            upscaled = upscaled_tree(args.root, size, Path(scratch))
            run_benchmark(args, argv, upscaled, synthetic_upscale=f"{size[0]}x{size[1]}")
    else:
        run_benchmark(args, argv, args.root, synthetic_upscale=None)


def _parse_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(part) for part in text.lower().split("x"))
    except ValueError:
        raise SystemExit(f"error: --upscale {text}: expected WxH, e.g. 4032x3024") from None
    return width, height


def run_benchmark(
    args: argparse.Namespace, argv: list[str], root: Path, synthetic_upscale: str | None
) -> None:
    """Every measurement on the photos under `root`; JSON to args.output."""
    measured = measure(args, root)
    result = result_json(measured, args, argv, synthetic_upscale)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print_summary(result)
    print(f"wrote {args.output}")


def measure(args: argparse.Namespace, root: Path) -> Measurements:
    """Per worker, then landmark tolerance (not timed), then end to end, with progress."""
    photos = [blob for _, blob in load_photos(root)]
    print(f"{len(photos)} photos from {root}: {photo_sizes(photos)}")
    cpu = None if args.no_pin else max(os.sched_getaffinity(0))
    print(f"per worker, one fresh process per method and round, pinned to CPU {cpu}:")
    per_worker = per_worker_rounds(root, args.rounds, args.limit, cpu)
    print("landmark tolerance (not timed):")
    found = landmark_sets(photos)
    tolerances = {
        name: tolerance(found["full"], landmarks)
        for name, landmarks in found.items()
        if name != "full"
    }
    print(json.dumps(tolerances, indent=1))
    print("end to end:")
    end_to_end = end_to_end_rounds(root, args.copies, args.workers, args.rounds)
    return Measurements(photos, cpu, per_worker, tolerances, end_to_end)


def result_json(
    measured: Measurements,
    args: argparse.Namespace,
    argv: list[str],
    synthetic_upscale: str | None,
) -> dict[str, Any]:
    """The figures written to args.output, with the machine and the targets."""
    per_worker, end_to_end = measured.per_worker, measured.end_to_end
    steady_scaling = _scaling(end_to_end, "steady_images_per_s")
    return {
        "command": "python -m emotion.bench extract " + " ".join(argv),
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "per_worker_pinned_to_cpu": measured.cpu,
            # Other jobs on the machine slow every figure; ratios within a run stay fair-ish.
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        },
        "photos": len(measured.photos),
        # Not None: the photos were upscaled copies (synthetic), see upscaled_tree.
        "synthetic_upscale": synthetic_upscale,
        "photo_sizes": photo_sizes(measured.photos),
        "rounds": args.rounds,
        "per_worker": per_worker,
        "ceiling_x_reference": per_worker["inference_only"]["x_reference"],
        "extractor_end_to_end": end_to_end,
        "scaling_2_vs_1_workers": _scaling(end_to_end, "images_per_s"),
        # After the first result: without planning, worker start-up and graph building.
        "scaling_2_vs_1_workers_steady": steady_scaling,
        "landmark_tolerance": {
            "vs": "full-resolution decode, same photos",
            "features": "nose_unit coordinates, as the model sees them",
            "training_noise_std": TRAINING_NOISE_STD,
            "tolerance_features_rms": LANDMARK_TOLERANCE_RMS,
            **measured.tolerances,
        },
        "targets": _targets(per_worker, measured.tolerances, steady_scaling),
    }


def _targets(
    per_worker: dict[str, Any], tolerances: dict[str, Any], steady_scaling: float | None
) -> dict[str, bool]:
    """Whether the default decode, one worker and two workers meet their stated targets."""
    default = per_worker[f"extractor_reduce_{DEFAULT_REDUCE}"]
    default_rms = tolerances[f"reduce_{DEFAULT_REDUCE}"].get("features_rms", float("inf"))
    return {
        "default_decode_within_landmark_tolerance": default_rms <= LANDMARK_TOLERANCE_RMS,
        f"per_worker_at_least_{TARGET_X_REFERENCE}x_reference": default["x_reference"]
        >= TARGET_X_REFERENCE,
        "per_worker_not_slower_than_bare_loop": default["x_bare_loop"] >= 1.0,
        # Throughput once running: the 2-worker run also pays a fixed ~0.7 s to spawn its
        # workers and build their graphs, which a run of hours does not notice but a run
        # of seconds does; images_per_s with it is reported above.
        f"steady_scaling_at_least_{TARGET_SCALING}": steady_scaling is not None
        and steady_scaling >= TARGET_SCALING,
    }


def print_summary(result: dict[str, Any]) -> None:
    """The headline figures of the result: rates, ratios, scaling and targets."""
    per_worker = result["per_worker"]
    summary = {
        "reference_images_per_s": per_worker["reference"]["images_per_s"],
        "bare_loop_images_per_s": per_worker["bare_loop"]["images_per_s"],
        **{
            method: {
                key: per_worker[method][key]
                for key in ("x_reference", "x_reference_median_of_rounds", "x_bare_loop")
            }
            for method in METHODS[2:]
        },
        "scaling_2_vs_1_workers": result["scaling_2_vs_1_workers"],
        "scaling_2_vs_1_workers_steady": result["scaling_2_vs_1_workers_steady"],
        "targets": result["targets"],
    }
    print(json.dumps(summary, indent=2))
