"""What the serving benchmark sends and serves: photos in memory, stream frames, tiny models.

Kept apart from the load (emotion.bench.serve_load) so that the clients hold nothing but
pre-encoded bytes by the time they start.
"""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emotion.bench.serve_server import subprocess_env

FIXTURE = Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "astronaut.jpg"
PHOTO_SUFFIXES = (".jpg", ".jpeg")
FRAME_SIZE = (640, 480)
# Tiny models train in seconds on the SYNTHETIC default; their speed is the full path's,
# since FaceMesh, not the model, is the cost of a request.
TINY = (
    "model.width=64",
    "model.depth=1",
    "model.head_width=32",
    "trainer.max_epochs=2",
    "trainer.accelerator=cpu",
    "data.synthetic.num_subjects=40",
    "progress_bar=none",
)


@dataclass(frozen=True)
class Photos:
    """The photos as bytes: every decodable one, those FaceMesh finds a face in, and where
    they came from ("sample" or "fixture")."""

    usable: list[bytes]
    faces: list[bytes]
    source: str
    detail: str
    dropped: int


def sample_photos(root: Path, limit: int) -> list[bytes]:
    """Up to `limit` JPEG members, evenly spread, of Training/[원천]EMOIMG_*_TRAIN_*.zip."""
    training = root / "Training"
    archives = sorted(
        path
        for path in (training.glob("*.zip") if training.is_dir() else ())
        if path.name.startswith("[원천]EMOIMG_") and "_TRAIN_" in path.name
    )
    photos = []
    for path in archives:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.lower().endswith(PHOTO_SUFFIXES):
                    photos.append(archive.read(info))
    step = max(1, len(photos) // max(1, limit))
    return photos[::step][:limit]


def _jpeg(image: object, quality: int = 90) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)  # type: ignore[attr-defined]
    return buffer.getvalue()


def fixture_photos() -> list[bytes]:
    """The fixture face, resized and shifted on a larger canvas: a few different requests."""
    from PIL import Image

    face = Image.open(FIXTURE).convert("RGB")
    photos = [FIXTURE.read_bytes()]
    photos += [_jpeg(face.resize((side, side))) for side in (480, 640, 800)]
    for dx, dy in ((0, 0), (96, 0), (0, 96), (64, 48)):
        canvas = Image.new("RGB", (640, 640), (120, 120, 120))
        canvas.paste(face, (dx, dy))
        photos.append(_jpeg(canvas))
    return photos


def frames_from(photos: list[bytes], most: int = 8) -> list[bytes]:
    """640x480 JPEG webcam-like frames cut from upright landscape photos (or any, if none)."""
    from PIL import Image, ImageOps

    from emotion.facemesh.decode import decode_upright

    upright = [Image.fromarray(decode_upright(data)[0]) for data in photos[: 4 * most]]
    landscape = [image for image in upright if image.width >= image.height] or upright
    return [_jpeg(ImageOps.fit(image, FRAME_SIZE), 85) for image in landscape[:most]]


def train_tiny(workdir: Path, name: str, *extra: str) -> Path:
    """`python -m emotion.training` on the SYNTHETIC default, tiny; the run directory."""
    command = [
        sys.executable,
        "-m",
        "emotion.training",
        *TINY,
        f"paths.root_dir={workdir}",
        f"run_name={name}",
        *extra,
    ]
    done = subprocess.run(
        command, cwd=workdir, env=subprocess_env(), capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).splitlines()[-30:])
        raise SystemExit(f"training the tiny {name} model failed ({done.returncode}):\n{tail}")
    return workdir / "outputs" / "train" / "runs" / name
