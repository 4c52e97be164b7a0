"""The face mesh's shape and MediaPipe's native logging: what every later room assumes of a
face (478 points of x, y, z), and the quiet start the landmarker (`landmarker.py`) needs."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

# What FaceLandmarker gives for one face: 478 points (468 and the irises)
# of x, y, z. Every later room's arrays have this shape (emotion.store.schema says it again).
NUM_LANDMARKS = 478
NUM_COORDS = 3
# Faces FaceLandmarker is asked for. More than one, so that a photo of two people is counted
# as such (the largest face is the one scored): with one, the other face was never seen. The
# landmark model runs once per face found, so a one-face photo costs the same.
MAX_FACES = 8


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
