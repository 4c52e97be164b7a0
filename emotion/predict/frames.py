"""A video's frames a chunk at a time, and items parked on disk: what keeps `emotion-predict`'s
memory flat however long the video.

`FaceMeshRunner.run` reads a whole video into one Outcome (about 20 KB a sampled frame once
features and probabilities are made; 2 GB at the default cap of 100 000 frames). Prediction
instead takes the frames `frames` at a time (`video_chunks`), scores them and writes their rows
before reading on. What must wait for the whole input (a session reference) waits on disk
(`Spool`), not in memory.
"""

from __future__ import annotations

import os
import pickle
import stat
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from emotion.facemesh.decode import EmptyFile, NotRegularFile, UndecodableImage, UnreadableFile
from emotion.facemesh.files import describe
from emotion.facemesh.media import UNEXPECTED_FAILURE, Media, Outcome
from emotion.facemesh.runner import FaceMeshRunner


def _held(outcome: Outcome) -> int:
    return len(outcome.faces) + len(outcome.no_face) + len(outcome.failures)


def video_chunks(runner: FaceMeshRunner, media: Media, frames: int) -> Iterator[Outcome]:
    """The runner's own video reading (`FaceMeshRunner._run_video`: the same checks, stride,
    frame cap, decoding and failures), yielded as Outcomes of at most `frames` sampled frames
    each, in frame order, each with the video's fps. Whatever goes wrong becomes a failure in
    the last chunk, never an exception, as in `FaceMeshRunner.run`."""
    import cv2

    outcome = Outcome()
    capture = None
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
            index = sampled = 0
            while sampled < runner.video_max_frames and capture.grab():
                if index % runner.video_stride == 0:
                    ok, frame = capture.retrieve()
                    sampled += 1
                    outcome.frames += 1
                    if not ok or frame is None:
                        outcome.fail(index, UndecodableImage.problem, "frame cannot be decoded")
                    else:
                        runner._video_frame(outcome, index, frame)
                    if _held(outcome) >= frames:
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
    yield outcome


class Spool:
    """Entries parked in an anonymous temporary file, read back once in the order put.

    The file has no name (or loses it at once), so it goes with the process, also on kill -9;
    it is this process's own, so what pickle reads back is what it wrote."""

    def __init__(self, folder: Path | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=folder)
        self.entries = 0

    def put(self, entry: Any) -> None:
        pickle.dump(entry, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.entries += 1

    def drain(self) -> Iterator[Any]:
        """Every entry, in the order put; the spool is then empty."""
        self._file.flush()
        self._file.seek(0)
        for _ in range(self.entries):
            yield pickle.load(self._file)
        self._file.seek(0)
        self._file.truncate()
        self.entries = 0

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
