"""The LEGACY FaceMesh graph (mediapipe 0.10.21) timed on photos, for `python -m emotion.bench
extract`: a standalone script run by a SIDE virtual environment's python.

The project moved to the Tasks API's FaceLandmarker (mediapipe 1.2.x), which no longer ships
the old graph, so the benchmark's baseline runs in its own interpreter. This file imports
nothing of `emotion` (the side environment holds only mediapipe 0.10.21 and what it pulls in:
numpy, OpenCV) and is run as a script. Make the side environment at the repository root:

    python3 -m venv .venv-legacy && .venv-legacy/bin/pip install mediapipe==0.10.21 pillow

Input, one JSON object a line on stdin: {"path": FILE or ZIP, "member": NAME or null,
"reduce": 1|2|4|8}. Each photo is decoded exactly as the extractor decodes a JPEG
(`emotion/facemesh/decode.py`): OpenCV's imdecode at the given DCT reduction (its
IMREAD_REDUCED_COLOR_N flag, EXIF orientation applied), then BGR to RGB; the benchmark passes
the factor the extractor picks, so the same pixels go into both graphs (`--digests` reports
the pixels' sha256 to check it). The graph: FaceMesh(static_image_mode=True,
refine_landmarks=True, max_num_faces=--max-faces), one graph for every photo, the largest
face kept. After `--warmup` photos, every photo is read, decoded and run once, timed.

Output, one JSON object on stdout: the mediapipe version, the photos, wall and CPU seconds of
the timed pass, per-photo seconds, faces found, and with `--landmarks` each photo's (478, 3)
landmarks of the largest face (null without one). `--check` only checks the environment.
A wrong environment is an `error:` and a `fix:` line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.metadata
import json
import os
import sys
import time
import zipfile
from typing import Any

LEGACY_VERSION = "0.10.21"
FIX = (
    "make the side environment: python3 -m venv .venv-legacy && .venv-legacy/bin/pip install "
    f"mediapipe=={LEGACY_VERSION} pillow, then pass its python (--legacy-python "
    ".venv-legacy/bin/python or EMOTION_LEGACY_PYTHON)"
)


def refuse(error: str, fix: str = FIX) -> None:
    """The user's mistake in two lines, exit status 2 (the project's rule, without its code)."""
    print(f"error: {error}", file=sys.stderr)
    print(f"fix: {fix}", file=sys.stderr)
    sys.exit(2)


def check_environment() -> str:
    """mediapipe's version, refusing anything but the legacy one (before importing it)."""
    try:
        version = importlib.metadata.version("mediapipe")
    except importlib.metadata.PackageNotFoundError:
        refuse(f"mediapipe is not installed for {sys.executable}")
    if version != LEGACY_VERSION:
        refuse(
            f"{sys.executable} has mediapipe {version}; the legacy FaceMesh baseline needs "
            f"mediapipe {LEGACY_VERSION}, the last with the old graph"
        )
    return version


def decode(data: bytes, reduce: int) -> Any:
    """RGB pixels as the extractor decodes a JPEG at `reduce`; None when undecodable."""
    import cv2
    import numpy as np

    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags[reduce])
    return None if image is None or image.size == 0 else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


class Reader:
    """Photo bytes from files or zip members, keeping each archive open as the extractor does."""

    def __init__(self) -> None:
        self._archives: dict[str, zipfile.ZipFile] = {}

    def read(self, photo: dict[str, Any]) -> bytes:
        if photo.get("member") is None:
            with open(photo["path"], "rb") as handle:
                return handle.read()
        archive = self._archives.get(photo["path"])
        if archive is None:
            archive = self._archives[photo["path"]] = zipfile.ZipFile(photo["path"])
        return archive.read(photo["member"])


def largest_face(result: Any, shape: tuple[int, ...]) -> list[list[float]] | None:
    """The landmarks of the face with the largest bounding box in pixels, as the extractor."""
    faces = [
        [(point.x, point.y, point.z) for point in face.landmark]
        for face in (result.multi_face_landmarks or [])
    ]
    if not faces:
        return None

    def area(points: list[tuple[float, float, float]]) -> float:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        return (max(xs) - min(xs)) * shape[1] * (max(ys) - min(ys)) * shape[0]

    return [list(point) for point in max(faces, key=area)]


def run(photos: list[dict[str, Any]], args: argparse.Namespace, version: str) -> dict[str, Any]:
    """The warm-up, then the timed pass over every photo: read, decode, FaceMesh."""
    face_mesh = importlib.import_module("mediapipe.python.solutions.face_mesh")
    reader = Reader()
    per_photo: list[float] = []
    found: list[int] = []
    landmarks: list[Any] = []
    digests: list[str | None] = []
    with face_mesh.FaceMesh(
        static_image_mode=True, max_num_faces=args.max_faces, refine_landmarks=True
    ) as mesh:
        for photo in photos[: args.warmup]:
            rgb = decode(reader.read(photo), photo["reduce"])
            if rgb is not None:
                mesh.process(rgb)
        started, cpu_started = time.perf_counter(), time.process_time()
        for photo in photos:
            begun = time.perf_counter()
            rgb = decode(reader.read(photo), photo["reduce"])
            result = None if rgb is None else mesh.process(rgb)
            per_photo.append(time.perf_counter() - begun)
            faces = len(result.multi_face_landmarks or []) if result is not None else 0
            found.append(faces)
            if args.landmarks:
                landmarks.append(None if result is None else largest_face(result, rgb.shape))
            if args.digests:
                digests.append(None if rgb is None else hashlib.sha256(rgb.tobytes()).hexdigest())
        seconds = time.perf_counter() - started
        cpu_seconds = time.process_time() - cpu_started
    output: dict[str, Any] = {
        "mediapipe_version": version,
        "python": sys.executable,
        "photos": len(photos),
        "seconds": seconds,
        "cpu_seconds": cpu_seconds,
        "per_photo_seconds": per_photo,
        "faces_found": found,
    }
    if args.landmarks:
        output["landmarks"] = landmarks
    if args.digests:
        output["pixel_sha256"] = digests
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check the environment")
    parser.add_argument("--cpu", type=int, help="pin this process to one core")
    parser.add_argument("--max-faces", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=10, help="photos run before timing")
    parser.add_argument("--landmarks", action="store_true", help="output each face's landmarks")
    parser.add_argument("--digests", action="store_true", help="output the pixels' sha256")
    args = parser.parse_args(argv)
    version = check_environment()
    if args.check:
        print(json.dumps({"mediapipe_version": version, "python": sys.executable}))
        return
    if args.cpu is not None:
        os.sched_setaffinity(0, {args.cpu})
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        photos = [json.loads(line) for line in sys.stdin if line.strip()]
    except json.JSONDecodeError as error:
        refuse(
            f"stdin line is not JSON ({error})", 'send {"path": ..., "member": ..., "reduce": 1}'
        )
    if not photos:
        refuse("no photos on stdin", 'send one {"path": ..., "member": ..., "reduce": 1} a line')
    print(json.dumps(run(photos, args, version)))


if __name__ == "__main__":
    main()
