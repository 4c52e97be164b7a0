"""Expand the paths given on the command line into media to run FaceMesh on.

Folders are searched recursively; zip archives give their image members (CP949 names
decoded as the extractor does). A path that is missing or of an unknown kind is not a reason
to stop: it becomes an `unreadable` item in the output.

Links follow the extractor's rule (`emotion.facemesh.files`): links to regular files are
followed, links to folders are not, and what is not a regular file once resolved (FIFO,
socket, device, broken link, link loop) is never opened: inside a folder it is skipped and
counted (`Inputs.skipped`, one warning line), named on the command line an `unreadable` item.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from emotion.facemesh.files import (
    IMAGE_SUFFIXES,
    VIDEO_SUFFIXES,
    is_regular_file,
    member_kind,
    open_zip,
    walk_entries,
    zip_member_names,
)
from emotion.facemesh.media import Media

NOT_REGULAR_WHY = "not a regular file (a FIFO, socket, device or broken link); not opened"
NOT_REGULAR_KINDS = "FIFOs, sockets, devices, broken links or link loops"


@dataclass
class Inputs:
    media: list[Media] = field(default_factory=list)
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # (source, why)
    skipped: list[str] = field(default_factory=list)  # folder entries not regular files


def _zip_media(path: Path, found: Inputs, zip_encoding: str) -> None:
    try:
        with open_zip(path) as archive:
            named = zip_member_names(archive, zip_encoding)
    except Exception as error:  # any broken archive is an unreadable item, never fatal
        found.unreadable.append((str(path), f"broken_zip: {type(error).__name__}: {error}"))
        return
    for info, name in sorted(named, key=lambda pair: pair[1]):
        if member_kind(name) == "image":
            found.media.append(Media(f"{path}::{name}", str(path), info.filename, False))


def _file_media(path: Path, found: Inputs, zip_encoding: str, explicit: bool) -> None:
    kind = member_kind(path.name)
    if kind in ("image", "video"):
        found.media.append(Media(str(path), str(path), None, kind == "video"))
    elif path.suffix.lower() == ".zip":
        _zip_media(path, found, zip_encoding)
    elif explicit:
        kinds = f"image ({'/'.join(IMAGE_SUFFIXES)}), video ({'/'.join(VIDEO_SUFFIXES)})"
        found.unreadable.append((str(path), f"not an {kinds} or zip archive"))


def _folder_files(folder: Path, found: Inputs) -> list[Path]:
    """Regular files (and links to them) under `folder`, sorted; folder links not followed.
    Entries that are not regular files once resolved go to `found.skipped`, unopened."""
    errors: list[OSError] = []
    files = []
    for path, kind in walk_entries(folder, errors):
        if kind == "file":
            files.append(path)
        elif kind == "special":
            found.skipped.append(str(path))
    found.skipped.sort()
    return sorted(files)


def warn_skipped(found: Inputs) -> None:
    """Say on stderr how many folder entries were skipped as not regular files, and the first."""
    if found.skipped:
        print(
            f"warning: skipped {len(found.skipped)} entries in the input folders that are not "
            f"regular files ({NOT_REGULAR_KINDS}; never opened), first: {found.skipped[0]}",
            file=sys.stderr,
        )


def collect_inputs(paths: list[str], zip_encoding: str = "cp949") -> Inputs:
    """Media in a stable order: arguments as given, folder contents sorted by path."""
    found = Inputs()
    for given in paths:
        path = Path(given)
        if path.is_dir():
            for child in _folder_files(path, found):
                _file_media(child, found, zip_encoding, explicit=False)
        elif is_regular_file(path):
            _file_media(path, found, zip_encoding, explicit=True)
        elif os.path.lexists(path):
            found.unreadable.append((given, NOT_REGULAR_WHY))
        else:
            found.unreadable.append((given, "no such file or folder"))
    return found
