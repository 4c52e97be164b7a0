"""Real FaceMesh photos of four "people" (the astronaut fixture, scaled and moved per person
and photo), their extracted store, and tiny runs trained on it: a plain model and a personal-
baseline one. Shared by the baseline, serving and browser tests (session-scoped fixtures in
conftest.py), so each is built once per test session."""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image

from tests.extract_tree import FIXTURE, extract_config

PEOPLE = "ABCD"
EMOTIONS = ("neutral", "neutral", "anxious", "anxious")


def face_photo(scale: float, shift: tuple[int, int], stretch: float = 1.0) -> bytes:
    """The fixture face rescaled (and stretched vertically) on a 640x480 canvas: another
    landmark set."""
    face = Image.open(FIXTURE).convert("RGB")
    size = int(face.width * scale)
    canvas = Image.new("RGB", (640, 480), (128, 128, 128))
    canvas.paste(face.resize((size, int(size * stretch))), shift)
    buffer = io.BytesIO()
    canvas.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def build_photo_store(root: Path) -> Path:
    """4 people x (2 neutral + 2 anxious) photos: A, B train; C, D test (folder splits)."""
    from emotion.extract.pipeline import extract
    from emotion.extract.settings import ExtractSettings

    for index, person in enumerate(PEOPLE):
        split = "train" if person in "AB" else "test"
        for number, emotion in enumerate(EMOTIONS):
            folder = root / split / emotion
            folder.mkdir(parents=True, exist_ok=True)
            scale = 0.8 + 0.05 * index + 0.02 * number
            shift = (40 + 10 * index + 5 * number, 20 + 7 * number)
            (folder / f"p{person}_{number}.jpg").write_bytes(face_photo(scale, shift))
    store = root.parent / "people.h5"
    extract(ExtractSettings.from_config(extract_config(root, store)))
    return store
