"""Expand the paths given on the command line into extractor tasks, one per photo or video.

Folders are searched recursively; zip archives give their image members (CP949 names
decoded as the extractor does). A path that is missing or of an unknown kind is not a reason
to stop: it becomes an `unreadable` item in the output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from emotion.extract.plan import Task
from emotion.extract.sources import Container, ContainerError, list_members, member_kind


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
        found.unreadable.append(
            (str(path), "not an image (.jpg/.jpeg/.png), video (.mp4/.avi) or zip archive")
        )


def collect_inputs(paths: list[str], zip_encoding: str = "cp949") -> Inputs:
    """Tasks in a stable order: arguments as given, folder contents sorted by path."""
    found = Inputs()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in sorted(p for p in path.rglob("*") if p.is_file()):
                _file_tasks(child, found, zip_encoding, explicit=False)
        elif path.is_file():
            _file_tasks(path, found, zip_encoding, explicit=True)
        else:
            found.unreadable.append((given, "no such file or folder"))
    return found
