"""Expand the paths given on the command line into extractor tasks, one per photo or video.

Folders are searched recursively; zip archives give their image members (CP949 names
decoded as the extractor does). A path that is missing or of an unknown kind is not a reason
to stop: it becomes an `unreadable` item in the output.

Links follow the extractor's rule (`emotion.extract.sources`): links to regular files are
followed, links to folders are not, and what is not a regular file once resolved (FIFO,
socket, device, broken link) is never opened: skipped inside a folder, an `unreadable` item
when named on the command line.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from emotion.extract.plan import Task
from emotion.extract.sources import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    Container,
    ContainerError,
    is_regular_file,
    list_members,
    member_kind,
    walk_entries,
)

NOT_REGULAR_WHY = "not a regular file (a FIFO, socket, device or broken link); not opened"


@dataclass
class Inputs:
    tasks: list[Task] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (source, why)


def _task(source: str, path: Path, member: str | None = None, video: bool = False) -> Task:
    return Task(
        source=source,
        path=str(path),
        member=member,
        video=video,
        archive=str(path),
        label=-1,
        subject="",
        split="",
    )


def _zip_tasks(path: Path, found: Inputs, zip_encoding: str) -> None:
    container = Container(name=path.name, path=path, kind="zip", split="")
    try:
        members = list_members(container, zip_encoding)
    except ContainerError as error:
        found.unreadable.append((str(path), str(error)))
        return
    for member in members:
        if member.kind == "image":
            found.tasks.append(_task(f"{path}::{member.name}", path, member=member.key))


def _file_tasks(path: Path, found: Inputs, zip_encoding: str, explicit: bool) -> None:
    kind = member_kind(path.name)
    if kind == "image":
        found.tasks.append(_task(str(path), path))
    elif kind == "video":
        found.tasks.append(_task(str(path), path, video=True))
    elif path.suffix.lower() == ".zip":
        _zip_tasks(path, found, zip_encoding)
    elif explicit:
        kinds = f"image ({'/'.join(IMAGE_SUFFIXES)}), video ({'/'.join(VIDEO_SUFFIXES)})"
        found.unreadable.append((str(path), f"not an {kinds} or zip archive"))


def _folder_files(folder: Path) -> list[Path]:
    """Regular files (and links to them) under `folder`, sorted; folder links not followed."""
    errors: list[OSError] = []
    return sorted(path for path, kind in walk_entries(folder, errors) if kind == "file")


def collect_inputs(paths: list[str], zip_encoding: str = "cp949") -> Inputs:
    """Tasks in a stable order: arguments as given, folder contents sorted by path."""
    found = Inputs()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in _folder_files(path):
                _file_tasks(child, found, zip_encoding, explicit=False)
        elif is_regular_file(path):
            _file_tasks(path, found, zip_encoding, explicit=True)
        elif os.path.lexists(path):
            found.unreadable.append((given, NOT_REGULAR_WHY))
        else:
            found.unreadable.append((given, "no such file or folder"))
    return found
