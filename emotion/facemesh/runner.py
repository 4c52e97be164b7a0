"""The landmark worker: read a photo (or a video's frames), decode it upright, find its face.

Whatever goes wrong with one photo becomes a named failure in its Outcome, never an
exception: one bad file must not end an extraction or an `emotion-predict` run.
"""

from __future__ import annotations

import os
import signal
import stat
import zipfile
from collections import OrderedDict
from collections.abc import Iterator
from typing import Any

import numpy as np

from emotion.facemesh.decode import (
    MAX_BYTES,
    MAX_PIXELS,
    MIN_SHORT_SIDE,
    CorruptArchiveMember,
    EmptyFile,
    NotRegularFile,
    UndecodableImage,
    UnreadableFile,
    decode_upright,
    reduction_for,
)
from emotion.facemesh.files import (
    MEMBER_READ_ERRORS,
    check_size,
    describe,
    open_zip,
    read_regular_file,
)
from emotion.facemesh.landmarker import IMAGE, VIDEO, Landmarker
from emotion.facemesh.media import UNEXPECTED_FAILURE, Face, Media, Outcome


def held(outcome: Outcome) -> int:
    """The frames an Outcome holds: faces, frames without one, failures."""
    return len(outcome.faces) + len(outcome.no_face) + len(outcome.failures)


class FaceMeshRunner:
    """Reads, decodes and runs FaceLandmarker on photos and videos, keeping a few archives open.

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
        self.detector = Landmarker(IMAGE)
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

    def _read(self, media: Media) -> bytes:
        """The photo's bytes, refusing before reading what is empty, too big or not a file."""
        if media.member is None:
            return read_regular_file(media.path, self.max_bytes)
        archive = self._archive(media.path)
        try:
            info = archive.getinfo(media.member)
        except KeyError as error:
            raise CorruptArchiveMember("member no longer in the archive") from error
        check_size(info.file_size, self.max_bytes)
        try:
            with archive.open(info) as handle:
                data = handle.read(self.max_bytes + 1)
        except MEMBER_READ_ERRORS as error:
            raise CorruptArchiveMember(describe(error)) from error
        except OSError as error:
            raise UnreadableFile(describe(error)) from error
        check_size(len(data), self.max_bytes)
        return data

    def run(self, media: Media) -> Outcome:
        """FaceMesh on one photo or on a video's sampled frames; never raises for bad input."""
        if media.video:
            (outcome,) = self.video_chunks(media)
            return outcome
        outcome = Outcome()
        try:
            self._run_photo(media, outcome)
        except UndecodableImage as error:
            outcome.fail(None, error.problem, str(error) or type(error).__name__)
        except Exception as error:  # anything unforeseen: counted and named, the run goes on
            outcome.fail(None, UNEXPECTED_FAILURE, describe(error))
        return outcome

    def run_bytes(self, data: bytes) -> Outcome:
        """FaceMesh on one photo's bytes (an upload), decoded exactly as a file would be."""
        outcome = Outcome()
        try:
            check_size(len(data), self.max_bytes)
            self._photo(data, outcome)
        except UndecodableImage as error:
            outcome.fail(None, error.problem, str(error) or type(error).__name__)
        except Exception as error:  # anything unforeseen: named, never raised
            outcome.fail(None, UNEXPECTED_FAILURE, describe(error))
        return outcome

    def _run_photo(self, media: Media, outcome: Outcome) -> None:
        self._photo(self._read(media), outcome)

    def _photo(self, data: bytes, outcome: Outcome) -> None:
        rgb, size = decode_upright(data, self.reduce, self.min_short_side, self.max_pixels)
        self._find_face(outcome, None, rgb, size)

    def _find_face(
        self,
        outcome: Outcome,
        frame: int | None,
        rgb: np.ndarray,
        size: tuple[int, int],
        detector: Landmarker | None = None,
        timestamp_ms: int | None = None,
    ) -> None:
        reading, count = (detector or self.detector).find(rgb, timestamp_ms)
        if reading is None:
            outcome.no_face.append(frame)
        else:
            outcome.faces.append(
                Face(frame, reading.landmarks, size, count, reading.blendshapes, reading.pose)
            )

    def video_chunks(self, media: Media, frames: int | None = None) -> Iterator[Outcome]:
        """A video's sampled frames as Outcomes of at most `frames` frames each (None: one
        Outcome of them all), in frame order, each with the video's fps: a long video is read
        in bounded memory. Whatever goes wrong is a failure in the last one, never raised.

        A video gets a VIDEO-mode landmarker of its own, which tracks the face from one
        sampled frame to the next (timed by the container's fps) instead of finding it anew."""
        import cv2

        outcome = Outcome()
        capture = None
        tracker: Landmarker | None = None
        try:
            try:
                details = os.stat(media.path)
            except OSError as error:
                raise UnreadableFile(error.strerror or str(error)) from error
            if not stat.S_ISREG(details.st_mode):
                raise NotRegularFile("not a regular file")
            if details.st_size == 0:
                raise EmptyFile("empty file (0 bytes)")
            capture = cv2.VideoCapture(media.path)
            if not capture.isOpened():
                outcome.fail(None, UndecodableImage.problem, "OpenCV cannot open the video")
            else:
                fps = outcome.fps = float(capture.get(cv2.CAP_PROP_FPS)) or None
                tracker = Landmarker(VIDEO)
                index = sampled = 0
                while sampled < self.video_max_frames and capture.grab():
                    if index % self.video_stride == 0:
                        ok, frame = capture.retrieve()
                        sampled += 1
                        outcome.frames += 1
                        if not ok or frame is None:
                            outcome.fail(index, UndecodableImage.problem, "frame cannot be decoded")
                        else:
                            stamp = round(index * 1000 / (fps or 30.0))
                            self._video_frame(outcome, index, frame, tracker, stamp)
                        if frames is not None and held(outcome) >= frames:
                            yield outcome
                            outcome = Outcome(fps=fps)
                    index += 1
                if index == 0:
                    outcome.fail(None, UndecodableImage.problem, "video has no frames")
        except UndecodableImage as error:
            outcome.fail(None, error.problem, str(error) or type(error).__name__)
        except Exception as error:  # anything unforeseen: counted and named, the run goes on
            outcome.fail(None, UNEXPECTED_FAILURE, describe(error))
        finally:
            if capture is not None:
                capture.release()
            if tracker is not None:
                tracker.close()
        yield outcome

    def _video_frame(
        self,
        outcome: Outcome,
        index: int,
        frame: np.ndarray,
        tracker: Landmarker,
        timestamp_ms: int,
    ) -> None:
        import cv2

        height, width = frame.shape[:2]
        factor = reduction_for((width, height), self.reduce, self.min_short_side)
        if factor > 1:
            frame = cv2.resize(
                frame, (width // factor, height // factor), interpolation=cv2.INTER_AREA
            )
        rgb = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        self._find_face(outcome, index, rgb, (width, height), tracker, timestamp_ms)

    def close(self) -> None:
        for archive in self._archives.values():
            archive.close()
        self._archives.clear()
        self.detector.close()


_runner: FaceMeshRunner | None = None


def init_worker(options: dict[str, Any]) -> None:
    """Pool initializer: one FaceMeshRunner (one landmarker) for the life of the process.

    Workers ignore Ctrl-C; the parent catches it, stops them and keeps what was flushed.
    """
    global _runner
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _runner = FaceMeshRunner(**options)


def run_in_worker(media: Media) -> Outcome:
    assert _runner is not None, "init_worker was not called"
    return _runner.run(media)
