"""MediaPipe FaceMesh for still photos: 478 refined landmarks of the largest face, one graph.

Building the graph costs more than running it on one photo, so each process builds one
(`FaceMeshDetector`) and feeds it every image.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

# What FaceMesh gives for one face with refine_landmarks=True: 478 points (468 and the irises)
# of x, y, z. Every later room's arrays have this shape (emotion.store.schema says it again).
NUM_LANDMARKS = 478
NUM_COORDS = 3
# Faces FaceMesh is asked for. More than one, so that a photo of two people is counted as
# such (the largest face is the one scored): with max_num_faces=1 the other face was never
# seen. The landmark model runs once per face found, so a one-face photo costs the same.
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


def still_face_mesh(max_faces: int = MAX_FACES) -> Any:
    """MediaPipe's legacy FaceMesh for still photos (up to `max_faces`, refined: 478 points).

    The same graph, models and options as `mp.solutions.face_mesh.FaceMesh(
    static_image_mode=True, max_num_faces=max_faces, refine_landmarks=True)`, with two
    changes that tests/test_extract_run.py checks do not change a landmark:
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
            # What FaceMesh.__init__ passes, for static_image_mode=True, max_num_faces,
            # refine_landmarks=True and the default confidences (0.5).
            SolutionBase.__init__(
                self,
                graph_config=graph,
                side_inputs={
                    "num_faces": max_faces,
                    "with_attention": True,
                    "use_prev_landmarks": False,
                },
                calculator_params={
                    "facedetectionshortrangecpu__facedetectionshortrange__facedetection__"
                    "TensorsToDetectionsCalculator.min_score_thresh": 0.5,
                    "facelandmarkcpu__ThresholdingCalculator.threshold": 0.5,
                },
                outputs=["multi_face_landmarks"],
            )
            self._image_stream = next(iter(self._input_stream_type_info))
            self._image_type = self._input_stream_type_info[self._image_stream]

        def all_faces(self, rgb: np.ndarray) -> list[Any]:
            """Every face's NormalizedLandmarkList (none when no face is found)."""
            if rgb.ndim != 3 or rgb.shape[2] != 3:
                raise ValueError(f"expected an RGB image, got shape {rgb.shape}")
            self._graph_outputs.clear()
            self._simulated_timestamp += 33333  # as process() does: 30 fps simulated
            packet = self._make_packet(self._image_type, rgb).at(self._simulated_timestamp)
            self._graph.add_packet_to_input_stream(stream=self._image_stream, packet=packet)
            self._graph.wait_until_idle()
            faces = self._graph_outputs.get("multi_face_landmarks")
            if faces is None or faces.is_empty():
                return []
            return list(packet_getter.get_proto_list(faces))

    return StillFaceMesh()


class FaceMeshDetector:
    """MediaPipe FaceMesh (legacy solutions API) for still images: the largest face found,
    478 points, and how many faces there were."""

    def __init__(self) -> None:
        quiet_native_logs()
        with silenced_stderr():
            self._mesh = still_face_mesh()
            # The first call loads the TF Lite models and logs about them; do it quietly.
            self._mesh.all_faces(np.zeros((64, 64, 3), dtype=np.uint8))
        self._quiet_until_first_face = True

    def landmarks(self, rgb: np.ndarray) -> np.ndarray | None:
        """(478, 3) raw normalised coordinates of the largest face, or None without one."""
        return self.find(rgb)[0]

    def find(self, rgb: np.ndarray) -> tuple[np.ndarray | None, int]:
        """The largest face's (478, 3) raw normalised coordinates (None without a face),
        and how many faces were found: the largest by its landmarks' bounding box."""
        if self._quiet_until_first_face:
            # The graph logs a one-off warning on its first face; keep it off the terminal.
            with silenced_stderr():
                found = self._mesh.all_faces(rgb)
            self._quiet_until_first_face = not found
        else:
            found = self._mesh.all_faces(rgb)
        faces = [coords for coords in map(landmark_array, found) if coords.shape == _FACE_SHAPE]
        if not faces:
            return None, 0
        return max(faces, key=lambda coords: _box_area(coords, rgb.shape)), len(faces)

    def close(self) -> None:
        self._mesh.close()


_FACE_SHAPE = (NUM_LANDMARKS, NUM_COORDS)


def _box_area(coords: np.ndarray, shape: tuple[int, ...]) -> float:
    """The face's landmark bounding box in pixels (x, y are fractions of width, height)."""
    width, height = np.ptp(coords[:, 0]) * shape[1], np.ptp(coords[:, 1]) * shape[0]
    return float(width * height)


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
