"""One writer per store: a second run to the same output is refused before it touches a file.

Without it, a second `emotion-extract` to the same output reopens the first one's `.partial`
with mode "w", truncating hours of work before HDF5's own file lock fails.
"""

from __future__ import annotations

import logging
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from emotion.errors import EmotionError

log = logging.getLogger(__name__)


def lock_path(store_path: Path) -> Path:
    """`data/x.h5` -> `data/x.h5.lock`, beside the store and its `.partial`."""
    return store_path.with_name(store_path.name + ".lock")


@contextmanager
def store_lock(store_path: Path, tool: str) -> Iterator[None]:
    """Hold an exclusive, non-blocking `flock` on `<store>.lock` while writing the store.

    The lock goes with the process (also on kill -9), so a stale lock file never blocks a
    rerun. The file is left in place: deleting it would let a third run lock a new file
    while a second still holds the old one. Where the file system cannot lock, a warning.
    A link planted there is refused (O_NOFOLLOW), never followed: its target is truncated
    by nobody.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no flock
        log.warning("cannot lock %s on this system; run one writer at a time", store_path)
        yield
        return
    path = lock_path(store_path)
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if path.is_symlink():
            raise EmotionError(
                f"{path} is a symbolic link (to {os.readlink(path)}); {tool} makes that lock "
                "file itself and does not follow links",
                f"remove the link (rm '{path}'; its target is left untouched) or choose another "
                "output",
            ) from None
        raise EmotionError(
            f"cannot open the lock file {path} ({error.strerror or error})",
            "choose an output in a folder you can write",
        ) from None
    try:
        details = os.fstat(descriptor)
        if not stat.S_ISREG(details.st_mode) or details.st_nlink > 1:
            raise EmotionError(
                f"{path} is not the plain file {tool} makes there (a hard link or a special "
                "file); it is left untouched",
                f"remove it (rm '{path}') or choose another output",
            )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as error:
            holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").split()
            who = f"{holder[1]} (pid {holder[0]})" if len(holder) >= 2 else "run (pid unknown)"
            raise EmotionError(
                f"{store_path} is being written by another {who}",
                f"wait for it to finish or stop it (it keeps its work in {store_path.name}"
                ".partial and resumes), or choose another output",
            ) from error
        except OSError as error:
            log.warning("cannot lock %s (%s); run one writer at a time", path, error)
        else:
            try:  # who holds it, for the message a second run gives; not needed to lock
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"{os.getpid()} {tool}\n".encode(), 0)
            except OSError as error:  # a full disk: the lock holds all the same
                log.debug("cannot write the holder into %s (%s)", path, error)
        yield
    finally:
        os.close(descriptor)
