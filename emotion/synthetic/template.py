"""`python -m emotion.synthetic.template --image tests/fixtures/astronaut.jpg`: make the face
template (`emotion/assets/face_template.npz`) by running MediaPipe's FaceLandmarker (the
extractor serving uses) once on a public-domain photo. Loading it is
`emotion.features.template.load_template` (numpy only).
"""

from __future__ import annotations

import argparse
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from emotion.features.template import TEMPLATE_FILE, load_template
from emotion.store.schema import NUM_COORDS, NUM_LANDMARKS

DEFAULT_IMAGE_SOURCE = (
    "tests/fixtures/astronaut.jpg: Eileen Collins, NASA portrait, as shipped in "
    "scikit-image's skimage.data.astronaut() (512x512)"
)
DEFAULT_LICENCE = "NASA, public domain, via scikit-image astronaut"
LANDMARKER_SETTINGS: dict[str, Any] = {"running_mode": "image", "num_faces": 8}


def run_landmarker(image_path: Path) -> tuple[np.ndarray, tuple[int, int]]:
    """Raw FaceLandmarker landmarks (478, 3) of the largest face in a photo, and its size."""
    from emotion.facemesh.decode import decode_upright
    from emotion.facemesh.landmarker import Landmarker

    rgb, (width, height) = decode_upright(image_path.read_bytes(), 1)
    landmarker = Landmarker()
    try:
        reading, _ = landmarker.find(rgb)
    finally:
        landmarker.close()
    if reading is None:
        raise RuntimeError(f"FaceLandmarker found no face in {image_path}")
    if reading.landmarks.shape != (NUM_LANDMARKS, NUM_COORDS):
        raise RuntimeError(f"FaceLandmarker returned {reading.landmarks.shape}, expected (478, 3)")
    return reading.landmarks, (width, height)


def build_template(image_path: Path, output: Path, image_source: str, licence: str) -> Path:
    """Run FaceLandmarker once and write the template with its provenance."""
    from emotion.facemesh.landmarker import extractor_identity

    landmarks, (width, height) = run_landmarker(image_path)
    extractor = extractor_identity()
    provenance = {
        "image": image_path.name,
        "image_source": image_source,
        "licence": licence,
        "image_size": [width, height],
        "mediapipe_version": extractor["mediapipe_version"],
        "extractor": extractor,
        "landmarker_settings": LANDMARKER_SETTINGS,
        "coordinates": "MediaPipe raw: x/width, y/height, z on the width's scale",
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(
        output,
        landmarks=landmarks,
        image_size=np.array([width, height], dtype=np.int32),
        provenance=np.array(json.dumps(provenance)),
    )
    return output


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", type=Path, default=Path("tests/fixtures/astronaut.jpg"))
    parser.add_argument("--output", type=Path, default=Path("emotion/assets") / TEMPLATE_FILE)
    parser.add_argument("--image-source", default=DEFAULT_IMAGE_SOURCE)
    parser.add_argument("--licence", default=DEFAULT_LICENCE)
    args = parser.parse_args(argv)
    path = build_template(args.image, args.output, args.image_source, args.licence)
    landmarks, size, provenance = load_template(path)
    print(f"wrote {path}: {landmarks.shape[0]} landmarks from a {size[0]}x{size[1]} image")
    print(f"provenance: {provenance['licence']}, mediapipe {provenance['mediapipe_version']}")


if __name__ == "__main__":
    main()
