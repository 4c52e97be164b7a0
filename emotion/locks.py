"""One writer at a time: an exclusive, non-blocking `flock` on a lock file of our own.

The lock goes with the process (also on kill -9), so a stale lock file never blocks a rerun;
the file is left in place (deleting it could let two runs lock two different files). A
link, hard link or special file planted at the lock's name is refused, never followed or
truncated (O_NOFOLLOW, then fstat). Written by hand rather than with the `filelock` package,
whose Unix lock opens with O_TRUNC and follows links. Where the file system cannot lock, a
warning, and the run goes on. Used by extraction (`<store>.lock`) and training
(`<run>/.lock`).
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


class LockHeld(Exception):
    """Another process holds the lock; `holder` is what it wrote there (may be empty)."""

    def __init__(self, holder: str) -> None:
        self.holder = holder
        super().__init__(holder)


@contextmanager
def exclusive_lock(path: Path, holder: str, fix: str) -> Iterator[None]:
    """Hold `path` locked, with `holder` written into it for a second run's message.

    LockHeld when another process holds it; EmotionError (with `fix`, what else to do) when
    the file there is not one a lock of ours could be."""
    try:
        import fcntl
    except ImportError:  # not POSIX: no flock
        log.warning("cannot lock %s on this system; run one at a time", path)
        yield
        return
    try:
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
    except OSError as error:
        if path.is_symlink():
            raise EmotionError(
                f"{path} is a symbolic link (to {os.readlink(path)}); the lock file is made "
                "here, never followed",
                f"remove the link (rm '{path}'; its target is left untouched), or {fix}",
            ) from None
        raise EmotionError(
            f"cannot open the lock file {path} ({error.strerror or error})", fix
        ) from None
    try:
        details = os.fstat(descriptor)
        if not stat.S_ISREG(details.st_mode) or details.st_nlink > 1:
            raise EmotionError(
                f"{path} is not a plain lock file (a hard link or a special file); it is left "
                "untouched",
                f"remove it (rm '{path}'), or {fix}",
            )
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
            ) from None
        except OSError as error:
            log.warning("cannot lock %s (%s); run one at a time", path, error)
        else:
            try:  # who holds it, for the message a second run gives; not needed to lock
                os.ftruncate(descriptor, 0)
                os.pwrite(descriptor, f"{holder}\n".encode(), 0)
            except OSError as error:  # a full disk: the lock holds all the same
                log.debug("cannot write the holder into %s (%s)", path, error)
        yield
    finally:
        os.close(descriptor)


def lock_holder(path: Path) -> str | None:
    """Who holds the lock at `path` now ('pid N', or 'another process'), or None when no one
    does; never taken for longer than the check, and nothing is created or written.

    A shared, non-blocking flock on a read-only descriptor: it fails only while a writer holds
    the exclusive lock, and is released at once. No file, a link or a special file there, or a
    system without flock: None (no writer of ours can hold such a lock)."""
    try:
        import fcntl
    except ImportError:
        return None
    try:
        descriptor = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            return None
        try:
            fcntl.flock(descriptor, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(descriptor, 200, 0).decode("utf-8", "replace").strip()
            return holder or "another process"
        except OSError:
            return None
        fcntl.flock(descriptor, fcntl.LOCK_UN)
        return None
    finally:
        os.close(descriptor)
