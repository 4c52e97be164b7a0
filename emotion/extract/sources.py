"""Find the photo containers under a data root and list their members.

Two layouts: AI Hub dataset 82 (`Training/` and `Validation/` holding `[원천]...zip` archives or
the same names as unpacked folders) and plain folders of images and videos.

Links: a link to a regular file is followed (data sets are often assembled from links); a link
to a folder is not (as `os.walk` does by default, so no loops). Anything that is not a regular
file once resolved (FIFO, socket, device, broken link) is listed as kind "special", counted and
never opened: opening a FIFO blocks for ever.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from emotion.errors import EmotionError
from emotion.facemesh.files import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    entry_kind,
    is_regular_file,
    member_kind,
    nfc,
    open_zip,
    walk_entries,
    zip_member_names,
)

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
# The report's names for entries skipped unopened: not a regular file once resolved (FIFO,
# socket, device, broken link), and a link to a folder.
NOT_REGULAR = "not_a_regular_file"
FOLDER_LINK = "folder_link_not_followed"


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
    # "image", "video", "other"; or, never opened: "special" (FIFO, socket, device, broken
    # link) or "folder_link" (a link to a folder inside an unpacked archive: not followed).
    kind: str

    @property
    def file_name(self) -> str:
        return self.name.rsplit("/", 1)[-1]


class ContainerError(Exception):
    """A container that cannot be listed (broken zip, unreadable folder)."""

    def __init__(self, problem: str, detail: str) -> None:
        super().__init__(f"{problem}: {detail}")
        self.problem = problem
        self.detail = detail


def is_aihub_root(root: Path) -> bool:
    return any(_split_dirs(root))


def _split_dirs(root: Path) -> list[tuple[Path, str]]:
    found = []
    for entry in sorted(root.iterdir()):
        split = AIHUB_SPLITS.get(nfc(entry.name).lower())
        if split and entry.is_dir():
            found.append((entry, split))
    return found


def aihub_containers(root: Path, skipped: list[str] | None = None) -> list[Container]:
    """Photo archives and unpacked folders under Training/ and Validation/, sorted by name.

    Links to archives and to unpacked folders are followed (named by the layout, no loops);
    an archive name that is not a regular file goes to `skipped`.
    """
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
                if is_regular_file(entry):
                    containers.append(Container(relative, entry, "zip", split))
                elif skipped is not None:
                    skipped.append(relative)
    return containers


def label_archives(root: Path, skipped: list[str] | None = None) -> list[tuple[Path, str]]:
    """`[라벨]` archives (annotator votes) with their split; non-regular files go to `skipped`."""
    found = []
    for split_dir, split in _split_dirs(root):
        for entry in sorted(split_dir.iterdir()):
            if LABEL_ARCHIVE_MARK in nfc(entry.name) and entry.name.lower().endswith(".zip"):
                if is_regular_file(entry):
                    found.append((entry, split))
                elif skipped is not None:
                    skipped.append(f"{nfc(split_dir.name)}/{nfc(entry.name)}")
    return found


def folder_containers(
    root: Path,
    unreadable: list[str],
    folder_links: list[str] | None = None,
    not_regular: list[str] | None = None,
) -> list[Container]:
    """Every folder under a plain root that directly holds images or videos.

    Links to folders are not followed (os.walk's default: no loops); they go to
    `folder_links`, relative to the root. A folder without images is no container, so the
    entries in it that are not regular files (FIFO, device, link loop) go to `not_regular`
    here, never opened; a container's own are counted when it is listed (`list_members`).
    """
    containers = []

    def on_error(error: OSError) -> None:
        unreadable.append(f"{error.filename}: {error.strerror}")

    for directory, subdirs, files in os.walk(root, onerror=on_error):
        subdirs.sort()
        path = Path(directory)
        relative = nfc(path.relative_to(root).as_posix()) if path != root else "."
        if folder_links is not None:
            for subdir in subdirs:
                if os.path.islink(path / subdir):
                    folder_links.append(
                        nfc(subdir) if relative == "." else f"{relative}/{nfc(subdir)}"
                    )
        if not any(member_kind(name) != "other" for name in files):
            if not_regular is not None:
                prefix = "" if relative == "." else f"{relative}/"
                not_regular += [
                    f"{prefix}{nfc(name)}" for name in files if not is_regular_file(path / name)
                ]
            continue
        split = "train"
        for part in relative.split("/"):
            split = FOLDER_SPLITS.get(part.lower(), split)
        containers.append(Container(relative, path, "folder", split, recursive=False))
    return sorted(containers, key=lambda container: container.name)


def list_members(container: Container, legacy_encoding: str = "cp949") -> list[Member]:
    """The container's files sorted by name; raises ContainerError when it cannot be read.

    Folder entries that are not regular files come back as kind "special" or "folder_link",
    for the caller to count; they are never opened.
    """
    if container.kind == "zip":
        try:
            with open_zip(container.path) as archive:
                named = zip_member_names(archive, legacy_encoding)
        except Exception as error:  # any broken archive is counted, never fatal
            detail = f"{container.name}: {type(error).__name__}: {error}"
            raise ContainerError("broken_zip", detail) from error
        members = [Member(info.filename, name, member_kind(name)) for info, name in named]
    else:
        members = _folder_members(container)
    return sorted(members, key=lambda member: member.name)


def _folder_members(container: Container) -> list[Member]:
    members: list[Member] = []
    errors: list[OSError] = []
    if container.recursive:
        entries = list(walk_entries(container.path, errors))
    else:
        # Sub-folders (and links to them) are containers of their own, or skipped and
        # counted by `folder_containers`.
        try:
            with os.scandir(container.path) as scan:
                entries = [(Path(entry.path), entry_kind(entry)) for entry in scan]
        except OSError as error:
            raise ContainerError("unreadable_folder", f"{container.name}: {error}") from error
        entries = [(path, kind) for path, kind in entries if kind not in ("folder", "folder_link")]
    for path, kind in entries:
        name = nfc(path.relative_to(container.path).as_posix())
        if kind == "file":
            members.append(Member(str(path), name, member_kind(name)))
        else:
            members.append(
                Member(str(path), name, "folder_link" if kind == "folder_link" else "special")
            )
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


def member_path(container: Container, member: Member) -> str:
    """The member's path under the root; a zip archive counts as a folder."""
    return member.name if container.name == "." else f"{container.name}/{member.name}"


def member_source(container: Container, member: Member) -> str:
    if container.kind == "zip":
        return f"{container.name}::{member.name}"
    if container.name == ".":
        return member.name
    return f"{container.name}/{member.name}"
