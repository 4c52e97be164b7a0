"""Find the photo containers under a data root and list their members.

Two layouts: AI Hub dataset 82 (`Training/` and `Validation/` holding `[원천]...zip` archives or
the same names as unpacked folders) and plain folders of images and videos.
"""

from __future__ import annotations

import os
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import Path

from emotion.errors import EmotionError

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
VIDEO_SUFFIXES = (".mp4", ".avi")
# AI Hub split folder -> store split.
AIHUB_SPLITS = {"training": "train", "validation": "test"}
# Plain-folder path components that name a split.
FOLDER_SPLITS = {
    "train": "train",
    "training": "train",
    "test": "test",
    "validation": "test",
    "valid": "test",
    "val": "test",
}
LABEL_ARCHIVE_MARK = "[라벨]"
UTF8_NAME_FLAG = 0x800


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


@dataclass(frozen=True)
class Container:
    """An archive or folder of photos: the unit of sampling and of the report."""

    name: str  # relative to the root, NFC: the report's key
    path: Path
    kind: str  # "zip" or "folder"
    split: str  # "train" or "test"
    recursive: bool = True  # folders: include sub-folders (AI Hub unpacked archives)


@dataclass(frozen=True)
class Member:
    """One file in a container."""

    key: str  # what reads it: the zip name as zipfile reports it, or the file path
    name: str  # NFC path inside the container, for people and reports
    kind: str  # "image", "video" or "other"

    @property
    def file_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


class ContainerError(Exception):
    """A container that cannot be listed (broken zip, unreadable folder)."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(f"{problem}: {detail}")
        self.problem = problem
        self.detail = detail


def member_kind(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return "other"


def decode_zip_name(info: zipfile.ZipInfo, legacy_encoding: str = "cp949") -> str:
    """A member's real name: zipfile decodes names without the UTF-8 flag as cp437.

    AI Hub archives hold CP949 bytes without the flag; some tools write UTF-8 without it.
    Valid UTF-8 is tried first (CP949 Hangul is almost never valid UTF-8), then CP949.
    """
    if info.flag_bits & UTF8_NAME_FLAG:
        return nfc(info.filename)
    try:
        raw = info.filename.encode("cp437")
    except UnicodeEncodeError:
        return nfc(info.filename)
    for encoding in ("utf-8", legacy_encoding):
        try:
            return nfc(raw.decode(encoding))
        except (UnicodeDecodeError, LookupError):
            continue
    return nfc(info.filename)


def is_aihub_root(root: Path) -> bool:
    return any(_split_dirs(root))


def _split_dirs(root: Path) -> list[tuple[Path, str]]:
    found = []
    for entry in sorted(root.iterdir()):
        split = AIHUB_SPLITS.get(nfc(entry.name).lower())
        if split and entry.is_dir():
            found.append((entry, split))
    return found


def aihub_containers(root: Path) -> list[Container]:
    """Photo archives and unpacked folders under Training/ and Validation/, sorted by name."""
    containers = []
    for split_dir, split in _split_dirs(root):
        for entry in sorted(split_dir.iterdir(), key=lambda path: nfc(path.name)):
            name = nfc(entry.name)
            if LABEL_ARCHIVE_MARK in name:
                continue
            relative = f"{nfc(split_dir.name)}/{name}"
            if entry.is_dir():
                containers.append(Container(relative, entry, "folder", split))
            elif name.lower().endswith(".zip"):
                containers.append(Container(relative, entry, "zip", split))
    return containers


def label_archives(root: Path) -> list[tuple[Path, str]]:
    """`[라벨]` archives (annotator votes) with their split."""
    found = []
    for split_dir, split in _split_dirs(root):
        for entry in sorted(split_dir.iterdir()):
            if LABEL_ARCHIVE_MARK in nfc(entry.name) and entry.name.lower().endswith(".zip"):
                found.append((entry, split))
    return found


def folder_containers(root: Path, unreadable: list[str]) -> list[Container]:
    """Every folder under a plain root that directly holds images or videos."""
    containers = []

    def on_error(error: OSError) -> None:
        unreadable.append(f"{error.filename}: {error.strerror}")

    for directory, subdirs, files in os.walk(root, onerror=on_error):
        subdirs.sort()
        if not any(member_kind(name) != "other" for name in files):
            continue
        path = Path(directory)
        relative = nfc(path.relative_to(root).as_posix()) if path != root else "."
        split = "train"
        for part in relative.split("/"):
            split = FOLDER_SPLITS.get(part.lower(), split)
        containers.append(Container(relative, path, "folder", split, recursive=False))
    return sorted(containers, key=lambda container: container.name)


def list_members(container: Container, legacy_encoding: str = "cp949") -> list[Member]:
    """The container's files sorted by name; raises ContainerError when it cannot be read."""
    if container.kind == "zip":
        try:
            with zipfile.ZipFile(container.path) as archive:
                infos = [info for info in archive.infolist() if not info.is_dir()]
        except (zipfile.BadZipFile, OSError, ValueError) as error:
            raise ContainerError("broken_zip", f"{container.name}: {error}") from error
        members = []
        for info in infos:
            name = decode_zip_name(info, legacy_encoding)
            members.append(Member(info.filename, name, member_kind(name)))
    else:
        members = _folder_members(container)
    return sorted(members, key=lambda member: member.name)


def _folder_members(container: Container) -> list[Member]:
    members: list[Member] = []
    errors: list[OSError] = []
    if container.recursive:
        walk = os.walk(container.path, onerror=errors.append)
    else:
        try:
            names = [entry.name for entry in os.scandir(container.path) if entry.is_file()]
        except OSError as error:
            raise ContainerError("unreadable_folder", f"{container.name}: {error}") from error
        walk = iter([(str(container.path), [], names)])
    for directory, _, files in walk:
        for file_name in files:
            path = Path(directory) / file_name
            name = nfc(path.relative_to(container.path).as_posix())
            members.append(Member(str(path), name, member_kind(name)))
    if errors and not members:
        raise ContainerError("unreadable_folder", f"{container.name}: {errors[0]}")
    return members


def check_root(root: Path, layout: str) -> str:
    """The layout to use ("aihub" or "folders"); fails at once on a missing or empty root."""
    if not root.exists():
        raise EmotionError(
            f"source.root {root} does not exist",
            "point source.root at the folder holding Training/ and Validation/ (AI Hub 82) "
            "or at a folder of images",
        )
    if not root.is_dir():
        raise EmotionError(f"source.root {root} is not a folder", "point it at a folder")
    if layout in ("auto", "aihub") and is_aihub_root(root):
        return "aihub"
    if layout == "aihub":
        raise EmotionError(
            f"source.root {root} has no Training/ or Validation/ folder",
            "point source.root at the AI Hub dataset-82 folder, or use source.layout=folders",
        )
    if _holds_media(root):
        return "folders"
    raise EmotionError(
        f"source.root {root} has neither the AI Hub layout (Training/, Validation/) nor images",
        f"point source.root at your data; images end in {', '.join(IMAGE_SUFFIXES)}, "
        f"videos in {', '.join(VIDEO_SUFFIXES)}",
    )


def _holds_media(root: Path) -> bool:
    for _, _, files in os.walk(root):
        if any(member_kind(name) != "other" for name in files):
            return True
    return False
