"""Where a photo's bytes come from: files and zip members, read safely.

Every file and zip member the extractor and `emotion-predict` read comes through here, so the
same rules hold for both: a file that is not regular (FIFO, socket, device, broken link) is
never opened (opening a FIFO blocks for ever), nothing over `max_bytes` is read, zip names
are decoded as AI Hub writes them (CP949 without the UTF-8 flag), and one member whose
flagged name is not UTF-8 does not cost the archive.
"""

from __future__ import annotations

import os
import stat
import unicodedata
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emotion.facemesh.decode import (
    MAX_BYTES,
    EmptyFile,
    NotRegularFile,
    TooLarge,
    UnreadableFile,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp", ".webp")
VIDEO_SUFFIXES = (".mp4", ".avi")
UTF8_NAME_FLAG = 0x800
# Errors of zipfile and its decompressors while reading a member's bytes.
MEMBER_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError, RuntimeError)


def nfc(text: str) -> str:
    return unicodedata.normalize("NFC", text)


def member_kind(name: str) -> str:
    suffix = os.path.splitext(name)[1].lower()
    if suffix in IMAGE_SUFFIXES:
        return "image"
    if suffix in VIDEO_SUFFIXES:
        return "video"
    return "other"


def decode_zip_name(
    info: zipfile.ZipInfo, legacy_encoding: str = "cp949", flagged_names_raw: bool = False
) -> str:
    """A member's real name: zipfile decodes names without the UTF-8 flag as cp437.

    AI Hub archives hold CP949 bytes without the flag; some tools write UTF-8 without it.
    Valid UTF-8 is tried first (CP949 Hangul is almost never valid UTF-8), then CP949.
    `flagged_names_raw`: the archive was opened by `open_zip`'s lenient fallback, so names
    with the flag came back as cp437 too; they are decoded as UTF-8 here, invalid bytes
    replaced, instead of losing the archive.
    """
    if info.flag_bits & UTF8_NAME_FLAG:
        if not flagged_names_raw:
            return nfc(info.filename)
        return nfc(info.filename.encode("cp437").decode("utf-8", errors="replace"))
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


# zipfile decodes a name flagged UTF-8 strictly, so one member whose flagged name is not UTF-8
# raises UnicodeDecodeError while listing and the whole archive is lost. The flag's mask is a
# private module constant that `ZipFile._RealGetContents` (listing) and `ZipFile.open` (which
# compares the local header's name with the listing's) read at call time; set to 0, both
# decode every name as cp437, which never fails. Private, so `open_zip` checks it exists. The
# change lasts one call, only for archives the normal opening refused, and each extraction
# worker (and emotion-predict) reads zips on one thread, so no other zip reading sees it.
_UTF8_MASK_NAME = "_MASK_UTF_FILENAME"


@contextmanager
def _flagged_names_as_cp437() -> Iterator[None]:
    saved = getattr(zipfile, _UTF8_MASK_NAME)
    setattr(zipfile, _UTF8_MASK_NAME, 0)
    try:
        yield
    finally:
        setattr(zipfile, _UTF8_MASK_NAME, saved)


class LenientNameZipFile(zipfile.ZipFile):
    """A ZipFile that reads every member name as cp437 bytes (see `decode_zip_name`)."""

    def _RealGetContents(self) -> None:  # noqa: N802 (zipfile's name)
        with _flagged_names_as_cp437():
            super()._RealGetContents()  # type: ignore[misc]

    def open(self, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        with _flagged_names_as_cp437():
            return super().open(*args, **kwargs)


def open_zip(path: str | os.PathLike[str]) -> zipfile.ZipFile:
    """Open a zip for reading; every zip the extractor and emotion-predict read comes here.

    Falls back to `LenientNameZipFile` when a flagged member name is not UTF-8. Refuses
    anything but a regular file (a FIFO named `.zip` would block for ever).
    """
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise zipfile.BadZipFile(f"{path} is not a regular file")
    try:
        return zipfile.ZipFile(path)
    except UnicodeDecodeError:
        if not hasattr(zipfile, _UTF8_MASK_NAME):
            raise
        return LenientNameZipFile(path)


def zip_member_names(
    archive: zipfile.ZipFile, legacy_encoding: str = "cp949"
) -> list[tuple[zipfile.ZipInfo, str]]:
    """Every file member (no folders) of an `open_zip` archive with its decoded NFC name."""
    raw = isinstance(archive, LenientNameZipFile)
    return [
        (info, decode_zip_name(info, legacy_encoding, flagged_names_raw=raw))
        for info in archive.infolist()
        if not info.is_dir()
    ]


def entry_kind(entry: os.DirEntry[str]) -> str:
    """What a folder entry is: "folder" (a real one), "file" (a regular file or a link to
    one), "folder_link" or "special" (FIFO, socket, device, broken or unreadable link)."""
    try:
        if entry.is_dir(follow_symlinks=False):
            return "folder"
        if entry.is_file():  # follows links; True only for regular files
            return "file"
        if entry.is_symlink() and entry.is_dir():
            return "folder_link"
    except OSError:
        pass
    return "special"


def is_regular_file(path: str | os.PathLike[str]) -> bool:
    """True for a regular file or a link to one; False for anything else or nothing."""
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except (OSError, ValueError):
        return False


def describe(error: BaseException) -> str:
    """`zlib.error: Error -3 ...`: the type (with its module unless built in) and message."""
    kind = type(error)
    name = kind.__name__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__name__}"
    return f"{name}: {error}"


def check_size(size: int, max_bytes: int) -> None:
    """Refuse by the declared size (zip directory, file system) before reading, and by the
    bytes read (at most max_bytes + 1) after, should the declaration have lied."""
    if size == 0:
        raise EmptyFile("empty file (0 bytes)")
    if size > max_bytes:
        raise TooLarge(f"{size} bytes or more, over decode.max_bytes={max_bytes}")


def read_regular_file(path: str, max_bytes: int = MAX_BYTES) -> bytes:
    """A file's bytes; refuses a FIFO, device or socket (never opened for reading: a FIFO
    blocks) and a file over `max_bytes` (not read), whatever its links point at."""
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise NotRegularFile("not a regular file")
        # O_NONBLOCK: should a FIFO appear here since the check, opening it does not wait.
        descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as error:
        raise UnreadableFile(error.strerror or str(error)) from error
    with open(descriptor, "rb") as handle:
        details = os.fstat(descriptor)
        if not stat.S_ISREG(details.st_mode):
            raise NotRegularFile("not a regular file")
        check_size(details.st_size, max_bytes)
        # Ask for the size the file has (+1 to see growth), not for max_bytes: a read of
        # 64 MiB allocates 64 MiB first, 0.1 ms a photo.
        wanted = details.st_size + 1
        try:
            data = handle.read(wanted)
            if len(data) == wanted:  # grown since fstat: read on, still capped
                data += handle.read(max_bytes + 1 - wanted)
        except OSError as error:
            raise UnreadableFile(error.strerror or str(error)) from error
    check_size(len(data), max_bytes)
    return data


def walk_entries(top: Path, errors: list[OSError]) -> Iterator[tuple[Path, str]]:
    """(path, `entry_kind`) of everything under `top`, descending real folders only."""
    pending = [top]
    while pending:
        directory = pending.pop()
        try:
            with os.scandir(directory) as scan:
                entries = [(Path(entry.path), entry_kind(entry)) for entry in scan]
        except OSError as error:
            errors.append(error)
            continue
        for path, kind in entries:
            if kind == "folder":
                pending.append(path)
            else:
                yield path, kind
