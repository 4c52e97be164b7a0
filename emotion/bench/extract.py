"""`python -m emotion.bench extract`: the extractor's speed against baselines of the same run.

Per-worker methods, on the same photos (the real-face sample), each a figure over a baseline:
  legacy_facemesh  the LEGACY FaceMesh graph (mediapipe 0.10.21, refine_landmarks, the same
                   8 faces) run by a side environment's python on the same pixels (decoded at
                   the reduction decode.reduce=auto picks); see emotion/bench/extract_legacy.py.
                   Make the side environment at the repository root with
                   `python3 -m venv .venv-legacy && .venv-legacy/bin/pip install
                   mediapipe==0.10.21 pillow`; pass `--legacy-python PATH` (default
                   $EMOTION_LEGACY_PYTHON, else .venv-legacy/bin/python). Without it the legacy
                   figures are recorded as skipped, with the reason;
  bare_loop        full-resolution decode + the public Tasks API FaceLandmarker.detect with the
                   extractor's options, photos in memory, results left as mediapipe gives them;
  extractor_*      one extractor worker (FaceMeshRunner: zip read, truncation check, upright
                   decode at decode.reduce, FaceLandmarker in IMAGE mode with blendshapes and
                   pose, header size, the largest face to arrays);
  inference_only   the extractor's Landmarker.find alone on photos already decoded at the
                   default reduction: the floor of a worker with this graph.
Each method runs in a fresh process pinned to one core (a worker's share of the machine;
`--no-pin` to lift it), after a warm-up pass; the methods alternate over `--rounds` rounds
and each figure is the median, so a burst of other load hits every method alike.
A video (emotion/bench/extract_video.py: a real face, SYNTHETIC motion) is run in VIDEO mode
(tracking) against IMAGE mode on the same frames. End to end, `extract()` runs with 1 and 2
workers, alternating, for the scaling. Landmarks from reduced decoding are compared with full
resolution in the features the model sees (nose_unit), next to two yardsticks: the
landmarker's own change when the photo moves by one pixel, and the default training noise;
the legacy graph's landmarks and VIDEO mode's are compared the same way.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from emotion.bench.extract_landmarks import landmark_sets, tolerance
from emotion.bench.extract_legacy import (
    LegacyFailed,
    LegacySide,
    check_legacy,
    default_legacy_python,
    legacy_landmarks,
)
from emotion.bench.extract_photos import DEFAULT_REDUCE, load_photos, photo_sizes, upscaled_tree
from emotion.bench.extract_report import Measurements, print_summary, result_json
from emotion.bench.extract_rounds import end_to_end_rounds, per_worker_rounds
from emotion.bench.extract_video import video_photo, video_rounds, write_video
from emotion.extract.plan import Task
from emotion.facemesh.decode import UndecodableImage, decode_upright
from emotion.facemesh.mesh import quiet_native_logs

DEFAULT_ROOT = Path("../shared/data/aihub_sample")
DEFAULT_OUTPUT = Path("outputs/bench/extract.json")


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m emotion.bench extract",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="AI Hub-layout photos")
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--limit", type=int, default=0, help="photos per method (0: all)")
    parser.add_argument("--no-pin", action="store_true", help="do not pin methods to one core")
    parser.add_argument("--copies", type=int, default=4, help="archive copies for end to end")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument(
        "--legacy-python",
        type=Path,
        default=None,
        help="the side environment's python with mediapipe 0.10.21 (default: "
        "$EMOTION_LEGACY_PYTHON, else .venv-legacy/bin/python)",
    )
    parser.add_argument("--video-frames", type=int, default=120, help="frames of the video")
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
    load_at_start = os.getloadavg()
    measured = measure(args, root)
    result = result_json(measured, args, argv, synthetic_upscale, load_at_start)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    partial = args.output.with_name(args.output.name + ".partial")
    partial.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    partial.replace(args.output)
    print_summary(result)
    print(f"wrote {args.output}")


def measure(args: argparse.Namespace, root: Path) -> Measurements:
    """Per worker, landmark distances (not timed), the video, then end to end, with progress."""
    photos = load_photos(root)
    blobs = [blob for _, blob in photos]
    print(f"{len(photos)} photos from {root}: {photo_sizes(blobs)}")
    side = check_legacy(args.legacy_python or default_legacy_python())
    print(f"legacy FaceMesh: {side.skipped or f'mediapipe {side.version} at {side.python}'}")
    cpu = None if args.no_pin else max(os.sched_getaffinity(0))
    print(f"per worker, one fresh process per method and round, pinned to CPU {cpu}:")
    per_worker = per_worker_rounds(root, args.rounds, args.limit, cpu, side)
    print("landmark distances (not timed):")
    found = landmark_sets(blobs)
    tolerances = {
        name: tolerance(found["full"], landmarks)
        for name, landmarks in found.items()
        if name != "full"
    }
    legacy = _legacy_distance(side, photos, found[f"reduce_{DEFAULT_REDUCE}"])
    print(json.dumps({**tolerances, "legacy": legacy}, indent=1))
    print("video, VIDEO mode against IMAGE mode:")
    video = _video(blobs, args.video_frames, args.rounds, cpu)
    print("end to end:")
    end_to_end = end_to_end_rounds(root, args.copies, args.workers, args.rounds)
    return Measurements(blobs, cpu, side, per_worker, tolerances, legacy, video, end_to_end)


def _legacy_distance(
    side: LegacySide, photos: list[tuple[Task, bytes]], new: list[np.ndarray | None]
) -> dict[str, Any]:
    """How far the legacy graph's landmarks lie from the new one's on the same pixels."""
    if side.skipped:
        return {"skipped": side.skipped}
    try:
        points, digests = legacy_landmarks(side, photos, DEFAULT_REDUCE)
    except LegacyFailed as error:
        return {"skipped": f"the legacy script failed: {error}"}
    decodable = same = 0
    for (_, data), digest in zip(photos, digests, strict=True):
        try:
            rgb = decode_upright(data, DEFAULT_REDUCE)[0]
        except UndecodableImage:  # refused here (a truncated JPEG): no pixels to compare
            continue
        decodable += 1
        same += digest == hashlib.sha256(rgb.tobytes()).hexdigest()
    return {
        "vs": f"the new landmarker, same photos at decode.reduce={DEFAULT_REDUCE}",
        "features": "nose_unit coordinates, as the model sees them",
        "photos": len(photos),
        "photos_the_extractor_decodes": decodable,
        "of_those_with_the_same_pixels_in_both": same,
        **tolerance(new, points),
    }


def _video(blobs: list[bytes], frames: int, rounds: int, cpu: int | None) -> dict[str, Any]:
    """The video made from the first landscape photo with a face, timed both ways."""
    rgb = video_photo(blobs)
    if rgb is None:
        return {"skipped": "no landscape photo with a face to make the video from"}
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "moving_face.avi"
        made = write_video(rgb, path, frames)
        return {"video": made, **video_rounds(path, rounds, cpu)}
