"""`python -m emotion.synthetic.template --image tests/fixtures/astronaut.jpg`: make the face
template (`emotion/assets/face_template.npz`) by running MediaPipe FaceMesh once on a
public-domain photo. Loading it is `emotion.features.template.load_template` (numpy only).
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
FACE_MESH_SETTINGS: dict[str, Any] = {
    "static_image_mode": True,
    "refine_landmarks": True,
    "max_num_faces": 1,
    "min_detection_confidence": 0.5,
}


def run_face_mesh(image_path: Path) -> tuple[np.ndarray, tuple[int, int], str]:
    """Raw FaceMesh landmarks (478, 3) of the one face in an image, its size, mediapipe version."""
    import cv2
    import mediapipe as mp

    image_bgr = cv2.imread(str(image_path))
    if image_bgr is None:
        raise FileNotFoundError(f"cannot read image {image_path}")
    height, width = image_bgr.shape[:2]
    with mp.solutions.face_mesh.FaceMesh(**FACE_MESH_SETTINGS) as face_mesh:
        result = face_mesh.process(cv2.cvtColor(image_bgr, cv2.COLOR_BGR2RGB))
    if not result.multi_face_landmarks:
        raise RuntimeError(f"FaceMesh found no face in {image_path}")
    points = result.multi_face_landmarks[0].landmark
    landmarks = np.array([(point.x, point.y, point.z) for point in points], dtype=np.float32)
    if landmarks.shape != (NUM_LANDMARKS, NUM_COORDS):
        raise RuntimeError(f"FaceMesh returned {landmarks.shape}, expected (478, 3)")
    return landmarks, (width, height), mp.__version__


def build_template(image_path: Path, output: Path, image_source: str, licence: str) -> Path:
    """Run FaceMesh once and write the template with its provenance."""
    landmarks, (width, height), mediapipe_version = run_face_mesh(image_path)
    provenance = {
        "image": image_path.name,
        "image_source": image_source,
        "licence": licence,
        "image_size": [width, height],
        "mediapipe_version": mediapipe_version,
        "face_mesh_settings": FACE_MESH_SETTINGS,
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
