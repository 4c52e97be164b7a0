"""The FaceMesh worker: decode a photo upright and find its 478 landmarks.

One FaceMesh graph per process, built once and reused for every image: building the graph
costs more than running it on one photo.
"""

from __future__ import annotations

import os
import signal
import stat
import sys
import zipfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotion.data.schema import NUM_COORDS, NUM_LANDMARKS
from emotion.extract.decode import (
    MAX_BYTES,
    MAX_PIXELS,
    MIN_SHORT_SIDE,
    CorruptArchiveMember,
    EmptyFile,
    NotRegularFile,
    TooLarge,
    UndecodableImage,
    UnreadableFile,
    decode_upright,
    reduction_for,
)
from emotion.extract.plan import Task
from emotion.extract.sources import open_zip

# Errors of zipfile and its decompressors while reading a member's bytes.
MEMBER_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)
# The report's name for a failure nothing above foresaw; the run still goes on.
UNEXPECTED_FAILURE = "failed"


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


def still_face_mesh() -> Any:
    """MediaPipe's legacy FaceMesh for still photos (one face, refined: 478 points).

    The same graph, models and options as `mp.solutions.face_mesh.FaceMesh(
    static_image_mode=True, max_num_faces=1, refine_landmarks=True)`, with two changes that
    tests/test_extract_run.py checks do not change a landmark:
    - the graph runs on the calling thread (MediaPipe's ApplicationThreadExecutor). By default
      it gets a pool as wide as the machine, whose idle threads spin on the other cores (0.3 ms
      of CPU a photo, measured unpinned), the other workers' cores when there are several; a
      one-thread pool still pays a hand-off per photo (0.06 ms on a pass-through graph);
    - `first_face` feeds the graph and reads its output directly. The public `process()`
      builds a new namedtuple class on every call (0.2-0.4 ms, a few per cent of a photo).
    """
    import mediapipe as mp
    from mediapipe.framework import calculator_pb2
    from mediapipe.python import packet_getter
    from mediapipe.python.solution_base import SolutionBase
    from mediapipe.python.solutions import face_mesh

    package_root = Path(mp.__file__).resolve().parent.parent
    binary_graph = (package_root / face_mesh._BINARYPB_FILE_PATH).read_bytes()

    class StillFaceMesh(face_mesh.FaceMesh):
        def __init__(self) -> None:
            graph = calculator_pb2.CalculatorGraphConfig.FromString(binary_graph)
            # Unnamed, so the graph's default executor: calculators run inside
            # wait_until_idle() on this thread, not on a pool.
            graph.executor.add(type="ApplicationThreadExecutor")
            # What FaceMesh.__init__ passes, for static_image_mode=True, max_num_faces=1,
            # refine_landmarks=True and the default confidences (0.5).
            SolutionBase.__init__(
                self,
                graph_config=graph,
                side_inputs={"num_faces": 1, "with_attention": True, "use_prev_landmarks": False},
                calculator_params={
                    "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
                    "TensorsToDetectionsCalculator.min_score_thresh": 0.5,
                    "facelandmarkcpu__ThresholdingCalculator.threshold": 0.5,
                },
                outputs=["multi_face_landmarks"],
            )
            self._image_stream = next(iter(self._input_stream_type_info))
            self._image_type = self._input_stream_type_info[self._image_stream]

        def first_face(self, rgb: np.ndarray) -> Any | None:
            """The first face's NormalizedLandmarkList, or None when no face is found."""
            if rgb.ndim != 3 or rgb.shape[2] != 3:
                raise ValueError(f"expected an RGB image, got shape {rgb.shape}")
            self._graph_outputs.clear()
            self._simulated_timestamp += 33333  # as process() does: 30 fps simulated
            packet = self._make_packet(self._image_type, rgb).at(self._simulated_timestamp)
            self._graph.add_packet_to_input_stream(stream=self._image_stream, packet=packet)
            self._graph.wait_until_idle()
            faces = self._graph_outputs.get("multi_face_landmarks")
            if faces is None or faces.is_empty():
                return None
            found = packet_getter.get_proto_list(faces)
            return found[0] if found else None

    return StillFaceMesh()


class FaceMeshDetector:
    """MediaPipe FaceMesh (legacy solutions API) for still images: one face, 478 points."""

    def __init__(self) -> None:
        quiet_native_logs()
        with silenced_stderr():
            self._mesh = still_face_mesh()
            # The first call loads the TF Lite models and logs about them; do it quietly.
            self._mesh.first_face(np.zeros((64, 64, 3), dtype=np.uint8))
        self._quiet_until_first_face = True

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) raw normalised coordinates, or None when there is no face."""
        if self._quiet_until_first_face:
            # The graph logs a one-off warning on its first face; keep it off the terminal.
            with silenced_stderr():
                face = self._mesh.first_face(rgb)
            self._quiet_until_first_face = face is None
        else:
            face = self._mesh.first_face(rgb)
        if face is None:
            return None
        coords = landmark_array(face)
        if coords.shape != (NUM_LANDMARKS, NUM_COORDS):
            return None
        return coords

    def close(self) -> None:
        self._mesh.close()


# A NormalizedLandmark serialised with x, y, z only: 0x0a <len 15>, then tag + 4-byte float per
# coordinate. 17 bytes a point, so a whole face is a (points, 17) byte table.
_WIRE_POINT_BYTES = 17
_WIRE_TAG_COLUMNS = np.array([0, 1, 2, 7, 12])
_WIRE_TAGS = np.array([0x0A, 0x0F, 0x0D, 0x15, 0x1D], dtype=np.uint8)
_WIRE_FLOAT_COLUMNS = np.array([3, 4, 5, 6, 8, 9, 10, 11, 13, 14, 15, 16])


def landmark_array(face: Any) -> np.ndarray:
    """(points, 3) float32 from a NormalizedLandmarkList.

    Read from its serialised bytes when they have the plain x, y, z layout (about 10 us),
    else point by point through protobuf attributes (about 0.2 ms, 3 % of a photo's cost).
    """
    wire = np.frombuffer(face.SerializeToString(), dtype=np.uint8)
    if wire.size and wire.size % _WIRE_POINT_BYTES == 0:
        table = wire.reshape(-1, _WIRE_POINT_BYTES)
        if (table[:, _WIRE_TAG_COLUMNS] == _WIRE_TAGS).all():
            floats = np.ascontiguousarray(table[:, _WIRE_FLOAT_COLUMNS]).view("<f4")
            return floats.reshape(-1, NUM_COORDS).astype(np.float32)
    return np.array([(p.x, p.y, p.z) for p in face.landmark], dtype=np.float32)


@dataclass
class Outcome:
    """What one task produced: rows with faces, and the sources that gave none.

    `undecodable` holds (source, why) for every photo or frame that gave no image, whatever
    the reason; `problems` names the reason for the report (source -> kind; missing: plain
    "undecodable").
    """

    rows: list[tuple[str, np.ndarray, tuple[int, int]]] = field(default_factory=list)
    no_face: list[str] = field(default_factory=list)
    undecodable: list[tuple[str, str]] = field(default_factory=list)
    frames: int = 0
    problems: dict[str, str] = field(default_factory=dict)

    def fail(self, source: str, problem: str, why: str) -> None:
        self.undecodable.append((source, why))
        self.problems[source] = problem

    def failures(self) -> list[tuple[str, str, str]]:
        """(source, problem kind, why) for every failure, in order."""
        return [
            (source, self.problems.get(source, UndecodableImage.problem), why)
            for source, why in self.undecodable
        ]


class TaskRunner:
    """Reads, decodes and runs FaceMesh on tasks, keeping a few archives open.

    Whatever goes wrong with one photo or video becomes a named failure in its Outcome, never
    an exception: one bad file must not end an extraction (or an emotion-predict run), and
    since a failure is a finished task, a resumed run does not retry it.
    """

    def __init__(
        self,
        reduce: int | str,
        video_stride: int,
        video_max_frames: int,
        min_short_side: int = MIN_SHORT_SIDE,
        max_bytes: int = MAX_BYTES,
        max_pixels: int = MAX_PIXELS,
    ) -> None:
        self.reduce = reduce
        self.min_short_side = min_short_side
        self.video_stride = video_stride
        self.video_max_frames = video_max_frames
        self.max_bytes = max_bytes
        self.max_pixels = max_pixels
        import cv2

        # OpenCV's thread pool is as wide as the machine and, after each colour conversion,
        # its idle threads spin on the other cores (0.6 ms of CPU a photo, measured unpinned
        # with no gain in time), taken from the other workers. A worker is one core's work.
        cv2.setNumThreads(1)
        self.detector = FaceMeshDetector()
        self._archives: OrderedDict[str, zipfile.ZipFile] = OrderedDict()

    def _archive(self, path: str) -> zipfile.ZipFile:
        archive = self._archives.get(path)
        if archive is None:
            try:
                archive = open_zip(path)
            except Exception as error:  # listed fine when planned: changed or gone since
                raise CorruptArchiveMember(
                    f"archive cannot be opened: {describe(error)}"
                ) from error
            self._archives[path] = archive
            while len(self._archives) > 4:
                self._archives.popitem(last=False)[1].close()
        self._archives.move_to_end(path)
        return archive

    def _read(self, task: Task) -> bytes:
        """The photo's bytes, refusing before reading what is empty, too big or not a file."""
        if task.member is None:
            return read_regular_file(task.path, self.max_bytes)
        archive = self._archive(task.path)
        try:
            info = archive.getinfo(task.member)
        except KeyError as error:
            raise CorruptArchiveMember("member no longer in the archive") from error
        _check_size(info.file_size, self.max_bytes)
        try:
            with archive.open(info) as handle:
                data = handle.read(self.max_bytes + 1)
        except MEMBER_READ_ERRORS as error:
            raise CorruptArchiveMember(describe(error)) from error
        except OSError as error:
            raise UnreadableFile(describe(error)) from error
        _check_size(len(data), self.max_bytes)
        return data

    def run(self, task: Task) -> Outcome:
        outcome = Outcome()
        try:
            if task.video:
                self._run_video(task, outcome)
            else:
                self._run_photo(task, outcome)
        except UndecodableImage as error:
            outcome.fail(task.source, error.problem, str(error) or type(error).__name__)
        except Exception as error:  # anything unforeseen: counted and named, the run goes on
            outcome.fail(task.source, UNEXPECTED_FAILURE, describe(error))
        return outcome

    def _run_photo(self, task: Task, outcome: Outcome) -> None:
        rgb, size = decode_upright(
            self._read(task), self.reduce, self.min_short_side, self.max_pixels
        )
        coords = self.detector.landmarks(rgb)
        if coords is None:
            outcome.no_face.append(task.source)
        else:
            outcome.rows.append((task.source, coords, size))

    def _run_video(self, task: Task, outcome: Outcome) -> None:
        import cv2

        try:
            details = os.stat(task.path)
        except OSError as error:
            raise UnreadableFile(error.strerror or str(error)) from error
        if not stat.S_ISREG(details.st_mode):
            raise NotRegularFile("not a regular file")
        if details.st_size == 0:
            raise EmptyFile("empty file (0 bytes)")
        capture = cv2.VideoCapture(task.path)
        if not capture.isOpened():
            outcome.fail(task.source, UndecodableImage.problem, "OpenCV cannot open the video")
            return
        index = 0
        try:
            while outcome.frames < self.video_max_frames and capture.grab():
                if index % self.video_stride == 0:
                    ok, frame = capture.retrieve()
                    source = f"{task.source}#frame={index}"
                    outcome.frames += 1
                    if not ok or frame is None:
                        outcome.fail(source, UndecodableImage.problem, "frame cannot be decoded")
                    else:
                        self._video_frame(outcome, source, frame)
                index += 1
        finally:
            capture.release()
        if index == 0:
            outcome.fail(task.source, UndecodableImage.problem, "video has no frames")

    def _video_frame(self, outcome: Outcome, source: str, frame: np.ndarray) -> None:
        import cv2

        height, width = frame.shape[:2]
        factor = reduction_for((width, height), self.reduce, self.min_short_side)
        if factor > 1:
            frame = cv2.resize(
                frame, (width // factor, height // factor), interpolation=cv2.INTER_AREA
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


def describe(error: BaseException) -> str:
    """`zlib.error: Error -3 ...`: the type (with its module unless built in) and message."""
    kind = type(error)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{name}: {error}"


def _check_size(size: int, max_bytes: int) -> None:
    """Refuse by the declared size (zip directory, file system) before reading, and by the
    bytes read (at most max_bytes + 1) after, should the declaration have lied."""
    if size == 0:
        raise EmptyFile("empty file (0 bytes)")
    if size > max_bytes:
        raise TooLarge(f"{size} bytes or more, over decode.max_bytes={max_bytes}")


def read_regular_file(path: str, max_bytes: int = MAX_BYTES) -> bytes:
    """A file's bytes; refuses a FIFO, device or socket (never opened for reading: a FIFO
    blocks) and a file over `max_bytes` (not read), whatever its links point at."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise NotRegularFile("not a regular file")
        # O_NONBLOCK: should a FIFO appear here since the check, opening it does not wait.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise UnreadableFile(error.strerror or str(error)) from error
    with open(descriptor, "rb") as handle:
        details = os.fstat(descriptor)
        if not stat.S_ISREG(details.st_mode):
            raise NotRegularFile("not a regular file")
        _check_size(details.st_size, max_bytes)
        # Ask for the size the file has (+1 to see growth), not for max_bytes: a read of
        # 64 MiB allocates 64 MiB first, 0.1 ms a photo.
        wanted = details.st_size + 1
        try:
            data = handle.read(wanted)
            if len(data) == wanted:  # grown since fstat: read on, still capped
                data += handle.read(max_bytes + 1 - wanted)
        except OSError as error:
            raise UnreadableFile(error.strerror or str(error)) from error
    _check_size(len(data), max_bytes)
    return data


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
