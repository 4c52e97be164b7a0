"""The public Tasks API used bare, for the extraction benchmark's `bare_loop`: a FaceLandmarker
with the extractor's options, fed a decoded photo, its result left as mediapipe gives it.

Here rather than in emotion.bench because only emotion/facemesh imports mediapipe. Against it
the benchmark sees what the extractor adds (reading, decoding choices, turning the result's
landmark objects into arrays); it is not used to extract anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emotion.facemesh.landmarker import IMAGE, tasks_landmarker
from emotion.facemesh.mesh import MAX_FACES


class BareLandmarker:
    """FaceLandmarker.detect (IMAGE mode, blendshapes and pose on, MAX_FACES faces), nothing
    more: no face chosen, no arrays built."""

    def __init__(self, max_faces: int = MAX_FACES) -> None:
        self._landmarker, self._image, self._format = tasks_landmarker(IMAGE, max_faces)

    def detect(self, rgb: np.ndarray) -> Any:
        """mediapipe's result for one RGB photo, untouched."""
        return self._landmarker.detect(self._image(image_format=self._format, data=rgb))

    def close(self) -> None:
        self._landmarker.close()
