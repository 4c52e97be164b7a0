"""A store's files: the `.partial` it is written into, refusing planted links and
unwritable places up front, and telling a full disk from other write failures."""

from __future__ import annotations

import errno
import logging
import os
import re
from pathlib import Path

import h5py

from emotion.rundir import write_problem
from emotion.store.schema import (
    StoreError,
)

log = logging.getLogger(__name__)


CHUNK_ROWS = 1024  # rows per HDF5 chunk of every dataset
COPY_ROWS = 8 * CHUNK_ROWS  # rows read at a time when a resume copies a partial store


class WriteFailed(StoreError):
    """Writing a store failed (a full disk, a file size limit); nothing more was written."""


class DamagedStore(StoreError):
    """A partial store whose rows cannot all be read back (a crash or a full disk left it)."""


def check_writable(path: Path, fix: str) -> None:
    """Fail before any work when `path` cannot be written (a folder, read-only, not there)."""
    if path.is_dir():
        raise StoreError(f"output {path} is a folder", f"name a file; {fix}")
    problem = write_problem(path.parent)
    if problem:
        raise StoreError(f"output {path} is not writable: {problem}", fix)


def refuse_link(path: Path) -> None:
    """A store's working files are made by the writer itself: a link planted there would have
    its target truncated and overwritten, so it is refused and left as it is."""
    if path.is_symlink():
        raise StoreError(
            f"{path} is a symbolic link (to {os.readlink(path)}); emotion writes its own file "
            "there and does not follow links",
            f"remove the link (rm '{path}'; its target is left untouched) or choose another output",
        )


def write_failure(path: Path, error: BaseException) -> WriteFailed:
    """The StoreError for a failed HDF5 write. h5py raises OSError or RuntimeError and keeps
    the system's errno only in its message (`errno = 28`), so both are looked at."""
    text = str(error)
    code = getattr(error, "errno", None)
    if code == errno.ENOSPC or f"errno = {errno.ENOSPC}," in text or "No space left" in text:
        why = "no space left on the device"
    elif code == errno.EFBIG or f"errno = {errno.EFBIG}," in text or "File too large" in text:
        why = "the file grew past the size limit of this file system or process (ulimit -f)"
    else:
        why = text.splitlines()[0] if text else type(error).__name__
    return WriteFailed(
        f"writing {path} failed: {why}",
        "free space on that disk, or choose an output on another one, then run the same "
        "command again",
    )


FIX_RESUME = "run the same command again: it starts that part over"
# HDF5's words when the file is shorter than its superblock says (H5Fsuper.c).
_TRUNCATED = re.compile(r"truncated file: eof = (\d+).*stored_eof = (\d+)")
MAX_PADDING = 2**30  # more missing than this is not one failed write


def open_partial(partial: Path) -> h5py.File:
    """Open a `.partial` left by a crash for reading, as far as it can be.

    A write that failed (a full disk) can leave the file shorter than the end HDF5 had
    already recorded, and HDF5 then opens none of it. What is missing was never written, so
    the file is padded with zeros (a sparse hole, no disk space) up to that end and opened;
    reading the rows back then tells what was complete. DamagedStore when it cannot be opened.
    """
    refuse_link(partial)
    try:
        return h5py.File(partial, "r")
    except OSError as error:
        text = str(error).splitlines()[0]
        short = _TRUNCATED.search(text)
        size, recorded = (int(short.group(1)), int(short.group(2))) if short else (0, 0)
        if not 0 < recorded - size <= MAX_PADDING or partial.stat().st_size != size:
            raise DamagedStore(f"{partial} cannot be opened ({text})", FIX_RESUME) from None
    log.warning(
        "%s ends %d bytes before the end HDF5 recorded (a write that failed); padding it to "
        "read back what was complete",
        partial,
        recorded - size,
    )
    os.truncate(partial, recorded)
    try:
        return h5py.File(partial, "r")
    except OSError as error:
        text = str(error).splitlines()[0]
        raise DamagedStore(f"{partial} cannot be opened ({text})", FIX_RESUME) from None


def partial_path_for(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial")
