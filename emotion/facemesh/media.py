"""What FaceMesh is run on, and what comes back: the facemesh room's own types.

Extraction and prediction both hand `Media` to the runner and read an `Outcome`; a video
frame is a number, never a string to parse back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

# The report's name for a failure nothing foresaw; the run still goes on.
UNEXPECTED_FAILURE = "failed"


@dataclass(frozen=True)
class Media:
    """One photo, or one video to sample frames from: a file, or a member of a zip archive."""

    source: str  # what rows call it: a path, or "archive::member"
    path: str  # the file, or the zip archive
    member: str | None  # the zip member to read; None for files
    video: bool

    def source_of(self, frame: int | None) -> str:
        """The name of one result: the source itself, or `<source>#frame=<n>` for a frame."""
        return self.source if frame is None else f"{self.source}#frame={frame}"


@dataclass(frozen=True)
class Face:
    frame: int | None  # None for a photo
    landmarks: np.ndarray  # (478, 3) raw FaceLandmarker coordinates
    image_size: tuple[int, int]  # upright (width, height) in pixels, full resolution
    faces: int = 1  # faces found in the photo or frame; the rest are the largest's
    blendshapes: np.ndarray | None = None  # (52,) scores, BLENDSHAPE_NAMES order
    pose: np.ndarray | None = None  # (4, 4) head pose: the canonical face in the camera frame


@dataclass(frozen=True)
class Failure:
    frame: int | None
    problem: str  # the report's name for it: empty_file, too_large, undecodable, ...
    why: str


@dataclass
class Outcome:
    """What one photo or video gave: per frame (None for a photo) a face, no face, or a
    named failure. `frames` counts the video frames sampled; `fps` turns them into time."""

    faces: list[Face] = field(default_factory=list)
    no_face: list[int | None] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    frames: int = 0
    fps: float | None = None  # a video's frame rate, as its container states it

    def fail(self, frame: int | None, problem: str, why: str) -> None:
        self.failures.append(Failure(frame, problem, why))
