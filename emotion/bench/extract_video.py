"""VIDEO mode (tracking) against IMAGE mode on the same frames, for the extraction benchmark.

The video is made here, in a temporary folder: a real photo of the sample (the first
landscape one with a face) under a 640x480 window that slides a few pixels a frame (the face
is real, the motion SYNTHETIC), written as MJPEG by OpenCV. Each method runs in a fresh
process pinned to one core, after a warm-up pass, alternating over the rounds:
  video_mode   FaceMeshRunner.video_chunks, the extractor's path for a video: its own
               VIDEO-mode landmarker (built inside the timing, as for every video) tracking
               the face from frame to frame;
  image_mode   the same frames read the same way, each through one IMAGE-mode Landmarker
               (built before timing, as a worker's), which finds the face anew every frame;
  decode_only  reading and converting the frames alone, so that the landmarker's own share
               of either can be told apart.
"""

from __future__ import annotations

import math
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import numpy as np

from emotion.bench.extract_landmarks import tolerance
from emotion.bench.extract_photos import decode_reduced
from emotion.facemesh.landmarker import IMAGE, Landmarker
from emotion.facemesh.media import Media
from emotion.facemesh.mesh import quiet_native_logs, silenced_stderr
from emotion.facemesh.runner import FaceMeshRunner

VIDEO_METHODS = ("video_mode", "image_mode", "decode_only")
VIDEO_SIZE = (640, 480)
VIDEO_FPS = 30.0
# The window's travel: up to this many pixels each way, on a slow Lissajous path.
SWING = (24, 16)
PERIODS = (60, 45)  # frames per swing in x and in y: at most 2.5 px a frame
TARGET_VIDEO_X_IMAGE = 1.5


def video_photo(photos: list[bytes]) -> np.ndarray | None:
    """The first landscape photo where IMAGE mode finds a face, as RGB (None without one)."""
    detector = Landmarker(IMAGE)
    try:
        for data in photos:
            rgb = decode_reduced(data, 1)
            if rgb is not None and rgb.shape[1] >= rgb.shape[0]:
                canvas = _canvas(rgb)
                if detector.find(canvas[: VIDEO_SIZE[1], : VIDEO_SIZE[0]])[0] is not None:
                    return rgb
    finally:
        detector.close()
    return None


def _canvas(rgb: np.ndarray) -> np.ndarray:
    """The photo scaled to cover the window plus its travel, centred."""
    import cv2

    width, height = VIDEO_SIZE[0] + 2 * SWING[0], VIDEO_SIZE[1] + 2 * SWING[1]
    scale = max(width / rgb.shape[1], height / rgb.shape[0])
    size = (math.ceil(rgb.shape[1] * scale), math.ceil(rgb.shape[0] * scale))
    scaled = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    left, top = (size[0] - width) // 2, (size[1] - height) // 2
    return np.ascontiguousarray(scaled[top : top + height, left : left + width])


def write_video(rgb: np.ndarray, path: Path, frames: int) -> dict[str, Any]:
    """The sliding-window video of `rgb` at `path`; what it is, for the result JSON."""
    import cv2

    canvas = cv2.cvtColor(_canvas(rgb), cv2.COLOR_RGB2BGR)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), VIDEO_FPS, VIDEO_SIZE)
    try:
        for index in range(frames):
            x = SWING[0] + round(SWING[0] * math.sin(2 * math.pi * index / PERIODS[0]))
            y = SWING[1] + round(SWING[1] * math.sin(2 * math.pi * index / PERIODS[1]))
            writer.write(np.ascontiguousarray(canvas[y : y + VIDEO_SIZE[1], x : x + VIDEO_SIZE[0]]))
    finally:
        writer.release()
    return {
        "what": "a real photo of the sample (the face is real) under a 640x480 window sliding "
        "on a Lissajous path (the motion is SYNTHETIC), MJPEG written by OpenCV",
        "frames": frames,
        "size": list(VIDEO_SIZE),
        "fps": VIDEO_FPS,
        "travel_px": list(SWING),
        "max_px_per_frame": round(
            max(2 * math.pi * s / p for s, p in zip(SWING, PERIODS, strict=True)), 2
        ),
    }


def _frames(path: str) -> Any:
    """The video's frames as RGB, read as the runner reads them (a grab, then a retrieve)."""
    import cv2

    capture = cv2.VideoCapture(path)
    try:
        while capture.grab():
            ok, frame = capture.retrieve()
            if ok and frame is not None:
                yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    finally:
        capture.release()


def _pass(method: str, path: str, detector: Landmarker | None) -> list[np.ndarray | None]:
    """One pass of `method` over the video: each frame's landmarks (None: no face)."""
    if method == "video_mode":
        runner = FaceMeshRunner(reduce="auto", video_stride=1, video_max_frames=10**9)
        (outcome,) = runner.video_chunks(Media(path, path, None, video=True))
        runner.close()
        by_frame: dict[int | None, np.ndarray] = {f.frame: f.landmarks for f in outcome.faces}
        return [by_frame.get(index) for index in range(outcome.frames)]
    points: list[np.ndarray | None] = []
    for rgb in _frames(path):
        if detector is None:
            points.append(None)
        else:
            reading, _ = detector.find(rgb)
            points.append(None if reading is None else reading.landmarks)
    return points


def _timed_video(method: str, path: str, cpu: int | None) -> dict[str, Any]:
    """One method in this (fresh) process: a warm-up pass, then the timed one."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    quiet_native_logs()
    import cv2

    cv2.setNumThreads(1)  # as the runner does: a worker is one core's work
    with silenced_stderr():
        detector = Landmarker(IMAGE) if method == "image_mode" else None
        _pass(method, path, detector)
        started, cpu_started = time.perf_counter(), time.process_time()
        points = _pass(method, path, detector)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        if detector is not None:
            detector.close()
    return {
        "frames": len(points),
        "seconds": round(seconds, 3),
        "frames_per_s": round(len(points) / seconds, 2),
        "frames_per_cpu_s": round(len(points) / cpu_seconds, 2),
        "faces": sum(p is not None for p in points),
        "landmarks": points,
    }


def video_rounds(video: Path, rounds: int, cpu: int | None) -> dict[str, Any]:
    """The methods alternating over the rounds; medians, ratios and the landmark distance."""
    runs: dict[str, list[dict[str, Any]]] = {method: [] for method in VIDEO_METHODS}
    context = get_context("spawn")
    for round_index in range(rounds):
        order = VIDEO_METHODS if round_index % 2 == 0 else tuple(reversed(VIDEO_METHODS))
        for method in order:
            with ProcessPoolExecutor(1, mp_context=context) as pool:
                rate = pool.submit(_timed_video, method, str(video), cpu).result()
            runs[method].append(rate)
            print(f"  round {round_index + 1} {method:12s} {rate['frames_per_s']:7.1f} frames/s")
    result: dict[str, Any] = {
        method: {
            "frames_per_s": statistics.median(run["frames_per_s"] for run in values),
            "frames_per_cpu_s": statistics.median(run["frames_per_cpu_s"] for run in values),
            "rounds": [run["frames_per_s"] for run in values],
            "frames": values[0]["frames"],
            "faces": values[0]["faces"],
        }
        for method, values in runs.items()
    }
    video, image = result["video_mode"], result["image_mode"]
    video["x_image_mode"] = round(video["frames_per_s"] / image["frames_per_s"], 2)
    video["x_image_mode_by_round"] = [
        round(a / b, 2) for a, b in zip(video["rounds"], image["rounds"], strict=True)
    ]
    decode_s = 1 / result["decode_only"]["frames_per_s"]
    # Each mode's landmarker alone: its time a frame less reading and converting the frame.
    landmarker_s = {
        key: 1 / result[key]["frames_per_s"] - decode_s for key in ("video_mode", "image_mode")
    }
    result["landmarker_only_video_x_image"] = (
        round(landmarker_s["image_mode"] / landmarker_s["video_mode"], 2)
        if min(landmarker_s.values()) > 0
        else None
    )
    result["video_vs_image_landmarks"] = {
        "features": "nose_unit coordinates, as the model sees them",
        **tolerance(runs["image_mode"][-1]["landmarks"], runs["video_mode"][-1]["landmarks"]),
    }
    return result
