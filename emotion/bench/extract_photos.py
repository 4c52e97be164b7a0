"""The photos the extraction benchmark measures on, and the trees it builds from them.

Kept apart from the timed rounds (emotion.bench.extract_rounds) and the landmark comparison
(emotion.bench.extract_landmarks), which both read photos the same way.
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from emotion.extract.plan import Task
from emotion.extract.sources import (
    Container,
    ContainerError,
    Member,
    aihub_containers,
    list_members,
)
from emotion.facemesh.decode import UndecodableImage, auto_reduce, decode_upright, jpeg_size

DEFAULT_REDUCE = "auto"


def _photo_archives(root: Path) -> list[tuple[Container, list[Member]]]:
    """The readable zip archives and their members (broken ones are the extractor's test)."""
    archives = []
    for container in aihub_containers(root):
        if container.kind == "zip":
            try:
                archives.append((container, list_members(container)))
            except ContainerError:
                continue
    return archives


def load_photos(root: Path) -> list[tuple[Task, bytes]]:
    """Every image member of the photo archives, as extractor tasks and as bytes."""
    photos = []
    for container, members in _photo_archives(root):
        with zipfile.ZipFile(container.path) as archive:
            for member in members:
                if member.kind == "image":
                    task = Task(
                        source=f"{container.name}::{member.name}",
                        path=str(container.path),
                        member=member.key,
                        video=False,
                        archive=container.name,
                        label=0,
                        subject="",
                        split=container.split,
                    )
                    photos.append((task, archive.read(member.key)))
    return photos


def decode_full(data: bytes) -> np.ndarray | None:
    """Full-resolution RGB through cv2.imdecode, as the old code decoded; None if undecodable."""
    import cv2

    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    return None if image is None else cv2.cvtColor(image, cv2.COLOR_BGR2RGB)


def decode_reduced(data: bytes, reduce: int | str) -> np.ndarray | None:
    """Upright RGB at `reduce`, as the extractor decodes it; None if undecodable."""
    try:
        return decode_upright(data, reduce)[0]
    except UndecodableImage:
        return None


def photo_sizes(photos: list[bytes]) -> dict[str, int]:
    """How many photos of each header size, with the reduction decode.reduce=auto picks."""
    sizes: dict[str, int] = {}
    for data in photos:
        size = jpeg_size(data)
        key = "unknown" if size is None else f"{size[0]}x{size[1]} (auto 1/{auto_reduce(size)})"
        sizes[key] = sizes.get(key, 0) + 1
    return sizes


def upscaled_tree(root: Path, size: tuple[int, int], into: Path) -> Path:
    """SYNTHETIC photos: the tree's photos resized to `size` (long x short side), as JPEG.

    For the cost at the size of real AI Hub photos (up to 4032x3024), which the sample does
    not hold. An upscaled photo is smoother than a real one of that size, so it compresses
    better and decodes faster: these figures understate the decoding cost of real photos.
    The faces stay upright; the EXIF orientation is applied before resizing and not kept.
    """
    import cv2

    long_side, short_side = max(size), min(size)
    for container, members in _photo_archives(root):
        target = into / container.name
        target.parent.mkdir(parents=True, exist_ok=True)
        with zipfile.ZipFile(container.path) as source, zipfile.ZipFile(target, "w") as copy:
            for member in members:
                if member.kind != "image":
                    continue
                try:
                    rgb, _ = decode_upright(source.read(member.key))
                except UndecodableImage:
                    continue
                height, width = rgb.shape[:2]
                shape = (long_side, short_side) if width >= height else (short_side, long_side)
                resized = cv2.resize(rgb, shape, interpolation=cv2.INTER_CUBIC)
                bgr = cv2.cvtColor(resized, cv2.COLOR_RGB2BGR)
                ok, encoded = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 92])
                if ok:
                    copy.writestr(member.name, encoded.tobytes())
    return into


def copied_tree(root: Path, copies: int, into: Path) -> Path:
    """An AI Hub tree holding each photo archive `copies` times (symlinks), for longer runs."""
    for container in aihub_containers(root):
        split_dir = into / container.path.parent.name
        split_dir.mkdir(parents=True, exist_ok=True)
        for copy in range(copies):
            stem = container.path.stem
            name = f"{stem}{'' if copy == 0 else f'_copy{copy}'}{container.path.suffix}"
            (split_dir / name).symlink_to(container.path.resolve())
    return into
