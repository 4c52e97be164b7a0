"""The public Tasks API used bare, for the extraction benchmark's `bare_loop`: a FaceLandmarker
with the extractor's options, fed a decoded photo, its result left as mediapipe gives it.

Here rather than in emotion.bench because only emotion/facemesh imports mediapipe. Against it
the benchmark sees what the extractor adds (reading, decoding choices, turning the result's
landmark objects into arrays); it is not used to extract anything.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from emotion.facemesh.landmarker import model_bytes
from emotion.facemesh.mesh import MAX_FACES, quiet_native_logs, silenced_stderr


class BareLandmarker:
    """FaceLandmarker.detect (IMAGE mode, blendshapes and pose on, MAX_FACES faces), nothing
    more: no face chosen, no arrays built."""

    def __init__(self, max_faces: int = MAX_FACES) -> None:
        quiet_native_logs()
        model = model_bytes()
        with silenced_stderr():
            import mediapipe as mp
            from mediapipe.tasks.python import BaseOptions, vision

            self._image = mp.Image
            self._format = mp.ImageFormat.SRGB
            options = vision.FaceLandmarkerOptions(
                base_options=BaseOptions(model_asset_buffer=model),
                running_mode=vision.RunningMode.IMAGE,
                num_faces=max_faces,
                output_face_blendshapes=True,
                output_facial_transformation_matrixes=True,
            )
            self._landmarker = vision.FaceLandmarker.create_from_options(options)

    def detect(self, rgb: np.ndarray) -> Any:
        """mediapipe's result for one RGB photo, untouched."""
        return self._landmarker.detect(self._image(image_format=self._format, data=rgb))

    def close(self) -> None:
        self._landmarker.close()
