"""The FaceMesh worker: decode a photo upright and find its 478 landmarks.

One FaceMesh graph per process, built once and reused for every image: building the graph
costs more than running it on one photo.
"""

from __future__ import annotations

import io
import math
import os
import signal
import sys
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from emotion.data.schema import NUM_COORDS, NUM_LANDMARKS
from emotion.extract.plan import Task


def quiet_native_logs() -> None:
    """Keep MediaPipe / TF Lite / glog from filling the terminal (set before importing them)."""
    os.environ.setdefault("GLOG_minloglevel", "2")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "2")


@contextmanager
def silenced_stderr() -> Iterator[None]:
    """Send the C++ side's stderr (absl pre-init warnings) to /dev/null for a moment."""
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


class FaceMeshDetector:
    """MediaPipe FaceMesh (legacy solutions API) for still images: one face, 478 points."""

    def __init__(self) -> None:
        quiet_native_logs()
        with silenced_stderr():
            import mediapipe as mp

            self._mesh = mp.solutions.face_mesh.FaceMesh(
                static_image_mode=True, max_num_faces=1, refine_landmarks=True
            )
            # The first call loads the TF Lite models and logs about them; do it quietly.
            self._mesh.process(np.zeros((64, 64, 3), dtype=np.uint8))
        self._quiet_until_first_face = True

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) raw normalised coordinates, or None when there is no face."""
        if self._quiet_until_first_face:
            # The graph logs a one-off warning on its first face; keep it off the terminal.
            with silenced_stderr():
                result = self._mesh.process(rgb)
            self._quiet_until_first_face = not result.multi_face_landmarks
        else:
            result = self._mesh.process(rgb)
        if not result.multi_face_landmarks:
            return None
        points = result.multi_face_landmarks[0].landmark
        coords = np.array([(p.x, p.y, p.z) for p in points], dtype=np.float32)
        if coords.shape != (NUM_LANDMARKS, NUM_COORDS):
            return None
        return coords

    def close(self) -> None:
        self._mesh.close()


class UndecodableImage(Exception):
    """Bytes that are not a whole image (corrupt, truncated, not an image at all)."""


def _imread_flag(reduce: int) -> int:
    import cv2

    return {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }[reduce]


def decode_upright(data: bytes, reduce: int = 1) -> tuple[np.ndarray, tuple[int, int]]:
    """RGB pixels with the EXIF orientation applied, and the full-resolution upright size.

    `reduce` > 1 lets libjpeg decode at 1/2, 1/4 or 1/8 scale (DCT scaling), far cheaper
    than decoding 1280x960 and FaceMesh looks at a 192-px crop anyway. OpenCV applies the
    EXIF orientation for the reduced flags too.
    """
    import cv2

    if _is_truncated_jpeg(data):
        raise UndecodableImage("truncated JPEG")
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), _imread_flag(reduce))
    if image is None or image.size == 0:
        raise UndecodableImage("OpenCV cannot decode it")
    height, width = image.shape[:2]
    size = (width, height) if reduce == 1 else _full_size(data, (width, height), reduce)
    return cv2.cvtColor(image, cv2.COLOR_BGR2RGB), size


def _is_truncated_jpeg(data: bytes) -> bool:
    """libjpeg fills a truncated JPEG with grey and only warns; catch it by its missing end.

    Files that end without the EOI marker may carry trailing data (phone "motion photos"),
    so those are checked by a cheap 1/8-scale PIL decode, which raises when truncated.
    """
    if not data.startswith(b"\xff\xd8"):
        return False
    if data.rstrip(b"\0").endswith(b"\xff\xd9"):
        return False
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            image.draft("RGB", (max(image.width // 8, 1), max(image.height // 8, 1)))
            image.load()
    except (OSError, SyntaxError, ValueError):
        return True
    return False


def _full_size(data: bytes, reduced: tuple[int, int], reduce: int) -> tuple[int, int]:
    """Full-resolution upright (width, height) from the header, checked against the decode."""
    from PIL import Image

    try:
        with Image.open(io.BytesIO(data)) as image:
            width, height = image.size
            orientation = image.getexif().get(0x0112, 1)
    except (OSError, SyntaxError, ValueError):
        return reduced[0] * reduce, reduced[1] * reduce
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    if (math.ceil(width / reduce), math.ceil(height / reduce)) != reduced:
        if (math.ceil(height / reduce), math.ceil(width / reduce)) == reduced:
            width, height = height, width
    return width, height


@dataclass
class Outcome:
    """What one task produced: rows with faces, and the sources that gave none."""

    rows: list[tuple[str, np.ndarray, tuple[int, int]]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    undecodable: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0


class TaskRunner:
    """Reads, decodes and runs FaceMesh on tasks, keeping a few archives open."""

    def __init__(self, reduce: int, video_stride: int, video_max_frames: int) -> None:
        self.reduce = reduce
        self.video_stride = video_stride
        self.video_max_frames = video_max_frames
        self.detector = FaceMeshDetector()
        self._archives: OrderedDict[str, zipfile.ZipFile] = OrderedDict()

    def _read(self, task: Task) -> bytes:
        if task.member is None:
            with open(task.path, "rb") as handle:
                return handle.read()
        archive = self._archives.get(task.path)
        if archive is None:
            archive = zipfile.ZipFile(task.path)
            self._archives[task.path] = archive
            while len(self._archives) > 4:
                self._archives.popitem(last=False)[1].close()
        self._archives.move_to_end(task.path)
        return archive.read(task.member)

    def run(self, task: Task) -> Outcome:
        if task.video:
            return self._run_video(task)
        outcome = Outcome()
        try:
            rgb, size = decode_upright(self._read(task), self.reduce)
        except (UndecodableImage, OSError, zipfile.BadZipFile, RuntimeError) as error:
            outcome.undecodable.append((task.source, str(error) or type(error).__name__))
            return outcome
        coords = self.detector.landmarks(rgb)
        if coords is None:
            outcome.no_face.append(task.source)
        else:
            outcome.rows.append((task.source, coords, size))
        return outcome

    def _run_video(self, task: Task) -> Outcome:
        import cv2

        outcome = Outcome()
        capture = cv2.VideoCapture(task.path)
        if not capture.isOpened():
            outcome.undecodable.append((task.source, "OpenCV cannot open the video"))
            return outcome
        index = 0
        try:
            while outcome.frames < self.video_max_frames and capture.grab():
                if index % self.video_stride == 0:
                    ok, frame = capture.retrieve()
                    source = f"{task.source}#frame={index}"
                    outcome.frames += 1
                    if not ok or frame is None:
                        outcome.undecodable.append((source, "frame cannot be decoded"))
                    else:
                        self._video_frame(outcome, source, frame)
                index += 1
        finally:
            capture.release()
        if index == 0:
            outcome.undecodable.append((task.source, "video has no frames"))
        return outcome

    def _video_frame(self, outcome: Outcome, source: str, frame: np.ndarray) -> None:
        import cv2

        height, width = frame.shape[:2]
        if self.reduce > 1:
            frame = cv2.resize(
                frame, (width // self.reduce, height // self.reduce), interpolation=cv2.INTER_AREA
            )
        coords = self.detector.landmarks(cv2.cvtColor(frame, cv2.COLOR_BGR2RGB))
        if coords is None:
            outcome.no_face.append(source)
        else:
            outcome.rows.append((source, coords, (width, height)))

    def close(self) -> None:
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()
        self.detector.close()


_runner: TaskRunner | None = None


def init_worker(options: dict[str, Any]) -> None:
    """Pool initializer: one TaskRunner (one FaceMesh graph) for the life of the process.

    Workers ignore Ctrl-C; the parent catches it, stops them and keeps what was flushed.
    """
    global _runner
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _runner = TaskRunner(**options)


def run_in_worker(task: Task) -> Outcome:
    assert _runner is not None, "init_worker was not called"
    return _runner.run(task)
