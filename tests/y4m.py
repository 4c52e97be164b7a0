"""Videos for Chromium's fake camera (`--use-file-for-fake-video-capture`, which reads YUV4MPEG2
or MJPEG): raw I420 frames, so a browser test shows the page an exact, repeatable face; and the
astronaut fixture's face, sized and pasted on a camera-sized canvas, to put in them."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from tests.extract_tree import FIXTURE

FPS = 15


def write_y4m(path: Path, frames: Iterable[np.ndarray], fps: int = FPS) -> int:
    """Write RGB uint8 frames (all H x W x 3, even sides) as a 4:2:0 y4m; returns the count."""
    count = 0
    with open(path, "wb") as out:
        for frame in frames:
            height, width = frame.shape[:2]
            if count == 0:
                if frame.ndim != 3 or frame.shape[2] != 3 or width % 2 or height % 2:
                    raise ValueError(f"y4m frames are RGB with even sides, got {frame.shape}")
                size = (height, width)
                out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
            elif (height, width) != size:
                raise ValueError(f"frame {count} is {width}x{height}, the first {size[::-1]}")
            rgb = np.ascontiguousarray(frame, dtype=np.uint8)
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())  # Y, then U, then V
            count += 1
    if count == 0:
        raise ValueError("a y4m needs at least one frame")
    return count


def face_frame(
    width: int = 320,
    height: int | None = None,
    center: tuple[int, int] = (320, 240),
    canvas: tuple[int, int] = (640, 480),
) -> np.ndarray:
    """The fixture face resized to width x height (height defaults to width: undistorted),
    centred at `center` on a grey canvas: a face whose landmark geometry the caller picks."""
    face = Image.open(FIXTURE).convert("RGB").resize((width, height or width))
    frame = Image.new("RGB", canvas, (128, 128, 128))
    frame.paste(face, (center[0] - face.width // 2, center[1] - face.height // 2))
    return np.asarray(frame)


def jpeg_bytes(frame: np.ndarray, quality: int = 85) -> bytes:
    """A frame as the page sends it (JPEG), e.g. to ask the server's REST API about it."""
    bgr = cv2.cvtColor(frame, cv2.COLOR_RGB2BGR)
    ok, data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError("JPEG encoding failed")
    return data.tobytes()


def blank_frame(canvas: tuple[int, int] = (640, 480)) -> np.ndarray:
    """The grey canvas alone: a frame without a face."""
    return np.full((canvas[1], canvas[0], 3), 128, dtype=np.uint8)


def looping_video(path: Path, segments: Sequence[tuple[np.ndarray, float]], fps: int = FPS) -> Path:
    """Each (frame, seconds) shown in turn; Chromium loops the file."""
    frames = [frame for frame, seconds in segments for _ in range(max(1, round(seconds * fps)))]
    write_y4m(path, frames, fps=fps)
    return path
