"""The face template: one real FaceMesh result, shipped as a small array.

It is the reference face of Procrustes alignment (`emotion.features.procrustes`) and the face
the synthetic generator deforms (`emotion.synthetic`). Loading it needs only numpy; it is made
by `python -m emotion.synthetic.template`, which runs FaceMesh once on a public-domain photo.
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emotion.store.schema import NUM_COORDS, NUM_LANDMARKS

TEMPLATE_FILE = "face_template.npz"


def template_path() -> Path:
    """Where the shipped template lives inside the installed package."""
    return Path(str(resources.files("emotion") / "assets" / TEMPLATE_FILE))


def load_template(
    path: str | Path | None = None,
) -> tuple[np.ndarray, tuple[int, int], dict[str, Any]]:
    """The template as (raw landmarks (478, 3) float32, (width, height), provenance); numpy only."""
    with np.load(path or template_path(), allow_pickle=False) as archive:
        landmarks = archive["landmarks"].astype(np.float32)
        width, height = (int(size) for size in archive["image_size"])
        provenance = json.loads(str(archive["provenance"]))
    if landmarks.shape != (NUM_LANDMARKS, NUM_COORDS) or not np.isfinite(landmarks).all():
        raise ValueError(f"face template has shape {landmarks.shape} or non-finite values")
    return landmarks, (width, height), provenance
