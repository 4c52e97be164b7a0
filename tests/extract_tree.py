"""Builds tiny trees from the astronaut fixture for the extraction tests: AI Hub 82-style, CK+,
FER2013 and JAFFE-style, and zip archives with members that break readers."""

from __future__ import annotations

import io
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from emotion.extract import pipeline

FIXTURE = Path(__file__).parent / "fixtures" / "astronaut.jpg"
CONF_DIR = Path(__file__).resolve().parents[1] / "emotion" / "conf"
PERSON_A = "a" * 64
PERSON_B = "b" * 64
PERSON_C = "c" * 64
PERSON_D = "d" * 64
EXIF_ORIENTATION = 0x0112


class LegacyNameInfo(zipfile.ZipInfo):
    """A zip member named by raw CP949 bytes with the UTF-8 flag (bit 11) clear, as AI Hub's."""

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 (zipfile's name)
        return self.filename.encode("cp437"), self.flag_bits & ~0x800


def write_zip(path: Path, members: dict[str, bytes], *, cp949: bool) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            if cp949:
                info = LegacyNameInfo(name.encode("cp949").decode("cp437"))
            else:
                info = zipfile.ZipInfo(name)
            archive.writestr(info, data)


def astronaut_bytes() -> bytes:
    return FIXTURE.read_bytes()


def upright_tall() -> Image.Image:
    """The astronaut as a 400x512 (portrait) upright picture: rotation changes its size."""
    return Image.open(FIXTURE).convert("RGB").resize((400, 512))


def jpeg(image: Image.Image, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    if orientation is None:
        image.save(buffer, "JPEG", quality=92)
    else:
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = orientation
        image.save(buffer, "JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def rotated_with_exif() -> bytes:
    """Pixels stored turned 90° counter-clockwise, with EXIF orientation 6 ("rotate 90° CW
    to view"): upright it is `upright_tall()`, 400x512; as stored it is 512x400."""
    return jpeg(upright_tall().transpose(Image.Transpose.ROTATE_90), orientation=6)


def no_face_jpeg() -> bytes:
    return jpeg(Image.fromarray(np.full((300, 400, 3), 128, dtype=np.uint8)))


def photo_name(person: str, emotion: str, number: int, suffix: str = ".jpg") -> str:
    return f"{person}_여_20_{emotion}_도심 환경_2020120{number}-001-00{number}{suffix}"


@dataclass
class Tree:
    root: Path
    rotated_member: str  # source id of the EXIF-rotated photo
    upright_member: str  # source id of the same photo stored upright


def build_aihub_tree(root: Path) -> Tree:
    """Training: 중립 (CP949 names, with traps), 불안, 기쁨 (other emotion), an archive with
    no emotion in its name and an empty one; Validation: 중립 (UTF-8 names), 불안 unpacked
    as a folder, a broken zip; plus [라벨] vote archives for 불안."""
    face = astronaut_bytes()
    training = root / "Training"
    validation = root / "Validation"
    training.mkdir(parents=True)
    validation.mkdir(parents=True)
    upright = photo_name(PERSON_A, "중립", 1)
    rotated = photo_name(PERSON_A, "중립", 2)
    write_zip(
        training / "[원천]EMOIMG_중립_TRAIN_01.zip",
        {
            upright: jpeg(upright_tall()),
            rotated: rotated_with_exif(),
            photo_name(PERSON_B, "중립", 3, ".jpeg"): face,
            photo_name(PERSON_B, "중립", 4): face[: len(face) // 2],  # truncated
            photo_name(PERSON_B, "중립", 5): no_face_jpeg(),
            "Thumbs.db": b"\x00not an image",
        },
        cp949=True,
    )
    write_zip(
        training / "[원천]EMOIMG_불안_TRAIN_01.zip",
        {
            photo_name(PERSON_A, "불안", 1): face,
            photo_name(PERSON_A, "불안", 2): face,
            photo_name(PERSON_C, "불안", 3): face,
        },
        cp949=True,
    )
    write_zip(
        training / "[원천]EMOIMG_기쁨_TRAIN_01.zip",
        {photo_name(PERSON_A, "기쁨", 1): face},
        cp949=True,
    )
    write_zip(
        training / "[원천]EMOIMG_TRAIN_03.zip", {photo_name(PERSON_C, "x", 1): face}, cp949=True
    )
    write_zip(training / "[원천]EMOIMG_슬픔_TRAIN_01.zip", {}, cp949=True)
    write_zip(
        validation / "[원천]EMOIMG_중립_VALID.zip",
        {photo_name(PERSON_A, "중립", 6): face, photo_name(PERSON_D, "중립", 7): face},
        cp949=False,
    )
    unpacked = validation / "[원천]EMOIMG_불안_VALID"
    unpacked.mkdir()
    (unpacked / photo_name(PERSON_D, "불안", 8, ".png")).write_bytes(_png(face))
    (validation / "[원천]EMOIMG_분노_VALID.zip").write_bytes(b"PK\x03\x04 broken")
    votes = [
        _vote(photo_name(PERSON_A, "불안", 1), "불안", "불안", "당황"),  # majority 불안
        _vote(photo_name(PERSON_A, "불안", 2), "불안", "당황", "당황"),  # majority 당황
        _vote(photo_name(PERSON_C, "불안", 3), "불안", "슬픔", "당황"),  # no majority
    ]
    write_zip(
        training / "[라벨]EMOIMG_불안_TRAIN.zip",
        {"img_emotion_training_data(불안).json": json.dumps(votes, ensure_ascii=False).encode()},
        cp949=False,
    )
    return Tree(
        root=root,
        rotated_member=f"Training/[원천]EMOIMG_중립_TRAIN_01.zip::{rotated}",
        upright_member=f"Training/[원천]EMOIMG_중립_TRAIN_01.zip::{upright}",
    )


def _png(data: bytes) -> bytes:
    buffer = io.BytesIO()
    Image.open(io.BytesIO(data)).save(buffer, "PNG")
    return buffer.getvalue()


def _vote(filename: str, a: str, b: str, c: str) -> dict[str, Any]:
    box = {"minX": 0.0, "minY": 0.0, "maxX": 10.0, "maxY": 10.0}
    return {
        "filename": filename,
        "faceExp_uploader": a,
        **{
            key: {"boxes": box, "faceExp": vote}
            for key, vote in zip(("annot_A", "annot_B", "annot_C"), (a, b, c), strict=True)
        },
    }


def extract_config(root: Path, output: Path, *overrides: str) -> Any:
    """The composed conf/extract.yaml with these overrides (no Hydra run directory)."""
    from hydra import compose, initialize_config_dir

    from emotion.extract import config  # noqa: F401  (registers extract_schema)

    with initialize_config_dir(str(CONF_DIR), version_base="1.3"):
        return compose(
            "extract",
            [f"source.root={root}", f"output={output}", "progress=none", *overrides],
        )


# Public data sets' layouts, rebuilt with the astronaut: tiny, generated, no third-party faces.

CK_PLUS = {  # CK+-style: <emotion folder>/S<subject>_<sequence>_<frame>.png
    "anger": ["S010_004_00000019.png", "S037_003_00000022.png"],
    "contempt": ["S138_008_00000008.png"],
    "disgust": ["S011_005_00000018.png"],
    "fear": ["S011_003_00000014.png"],
    "happy": ["S010_006_00000015.png"],
    "neutral": ["S005_001_00000001.png", "S010_006_00000001.png"],
    "sadness": ["S014_002_00000016.png"],
    "surprise": ["S010_002_00000014.png"],
}
FER = {  # FER2013-style: <split>/<emotion folder>/<numbered file>, names repeat across folders
    "train": {
        "angry": ["im0.jpg", "im1.jpg"],
        "disgust": ["im0.jpg"],
        "fear": ["im0.jpg"],
        "happy": ["im0.jpg"],
        "neutral": ["im0.jpg"],
        "sad": ["im0.jpg"],
        "surprise": ["im0.jpg"],
    },
    "test": {"happy": ["im0.jpg"], "sad": ["im0.jpg"]},
}
# JAFFE-style: one flat folder, <subject>.<code><n>.<id>.tiff, grayscale.
JAFFE = [
    "KA.AN1.39.tiff",
    "KA.FE1.45.tiff",
    "KL.HA2.30.tiff",
    "KM.NE1.1.tiff",
    "NA.SA1.10.tiff",
    "TM.SU1.1.tiff",
    "YM.DI1.1.tiff",
]


def face_file(image_format: str, size: int = 160, mode: str = "RGB") -> bytes:
    """The astronaut, small, re-encoded (PNG, grayscale TIFF, JPEG, ...)."""
    buffer = io.BytesIO()
    Image.open(FIXTURE).convert(mode).resize((size, size)).save(buffer, image_format)
    return buffer.getvalue()


def build_ck_plus_tree(root: Path) -> Path:
    png = face_file("PNG")
    for emotion, names in CK_PLUS.items():
        (root / emotion).mkdir(parents=True)
        for name in names:
            (root / emotion / name).write_bytes(png)
    return root


def build_fer_tree(root: Path) -> Path:
    photo = face_file("JPEG", size=128, mode="L")
    for split, folders in FER.items():
        for emotion, names in folders.items():
            (root / split / emotion).mkdir(parents=True)
            for name in names:
                (root / split / emotion / name).write_bytes(photo)
    return root


def build_jaffe_tree(root: Path) -> Path:
    tiff = face_file("TIFF", mode="L")
    root.mkdir(parents=True)
    for name in JAFFE:
        (root / name).write_bytes(tiff)
    (root / "README.txt").write_text("not a photo")
    return root


# Zip members that break readers, made by patching a few bytes of a tiny archive.

CENTRAL_DIRECTORY = b"PK\x01\x02"


class FlaggedRawNameInfo(zipfile.ZipInfo):
    """A member named by raw bytes (possibly invalid UTF-8) with the UTF-8 flag set."""

    def __init__(self, raw_name: bytes) -> None:
        super().__init__(raw_name.decode("cp437"))

    def _encodeFilenameFlags(self) -> tuple[bytes, int]:  # noqa: N802 (zipfile's name)
        return self.filename.encode("cp437"), self.flag_bits | 0x800


def _central_entries(data: bytes) -> list[tuple[int, bytes]]:
    """(offset, raw name) of each central directory entry."""
    entries, position = [], data.find(CENTRAL_DIRECTORY)
    while position != -1:
        length = int.from_bytes(data[position + 28 : position + 30], "little")
        entries.append((position, data[position + 46 : position + 46 + length]))
        position = data.find(CENTRAL_DIRECTORY, position + 46 + length)
    return entries


def declare_member_size(path: Path, name: str, size: int) -> None:
    """Make the central directory claim `size` bytes for member `name` (data unchanged)."""
    data = bytearray(path.read_bytes())
    (offset,) = [offset for offset, raw in _central_entries(bytes(data)) if raw == name.encode()]
    data[offset + 24 : offset + 28] = size.to_bytes(4, "little")
    path.write_bytes(bytes(data))


def corrupt_member_data(path: Path, name: str) -> None:
    """Overwrite the start of a deflated member's data: deflate then fails (zlib.error)."""
    data = bytearray(path.read_bytes())
    (entry,) = [offset for offset, raw in _central_entries(bytes(data)) if raw == name.encode()]
    header = int.from_bytes(data[entry + 42 : entry + 46], "little")
    start = header + 30 + int.from_bytes(data[header + 26 : header + 28], "little")
    start += int.from_bytes(data[header + 28 : header + 30], "little")
    data[start : start + 16] = b"\xff" * 16  # block type 3: reserved, invalid
    path.write_bytes(bytes(data))


def huge_truncated_jpeg() -> bytes:
    """A JPEG whose frame header claims 20000x20000, cut off in the middle."""
    data = bytearray(face_file("JPEG"))
    position = 2
    while data[position + 1] not in (0xC0, 0xC1, 0xC2):
        position += 2 + int.from_bytes(data[position + 2 : position + 4], "big")
    data[position + 5 : position + 9] = (20000).to_bytes(2, "big") * 2
    return bytes(data[: len(data) // 2])


class InterruptingRunner(pipeline.FaceMeshRunner):
    """Raises KeyboardInterrupt (as Ctrl-C would) when asked for its `stop_at`-th photo."""

    calls = 0
    stop_at = 5

    def run(self, task: pipeline.Task) -> pipeline.Outcome:
        InterruptingRunner.calls += 1
        if InterruptingRunner.calls == self.stop_at:
            raise KeyboardInterrupt
        return super().run(task)
