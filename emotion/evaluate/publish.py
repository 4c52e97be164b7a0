"""An evaluation's files published as a set: written into a temporary folder, then a new
output folder is one rename, and into an existing one each file is renamed into place while
the folder is locked. Two evaluations into one folder leave one of them whole (the last to
finish), never a mix, and one that fails leaves the folder as it was."""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

from emotion.errors import EmotionError
from emotion.evaluate.report import OUTPUTS
from emotion.rundir import fresh_name, make_dir_beside, write_problem


def output_dir_problem(output_dir: Path) -> str | None:
    """Why an evaluation could not be written to `output_dir`, or None; creates nothing."""
    if output_dir.exists() and not output_dir.is_dir():
        return f"{output_dir} is a file, not a folder"
    return write_problem(output_dir)


def check_output_dir(output_dir: Path) -> None:
    """Refuse an output_dir that cannot be written, naming it."""
    problem = output_dir_problem(output_dir)
    if problem:
        raise EmotionError(
            f"cannot write output_dir={output_dir}: {problem}",
            "pass output_dir=<a folder you can write to>, or make this one writable",
        )


@contextlib.contextmanager
def staged_output_dir(output_dir: Path) -> Iterator[Path]:
    """A fresh folder to write the evaluation into, published as `output_dir` when the block
    ends without an error, removed when it ends with one.

    Staged beside `output_dir` when that does not exist yet (published by one rename), else
    inside it (hidden), so a folder in a parent this user cannot write still works."""
    check_output_dir(output_dir)
    try:
        if output_dir.is_dir():
            staging = make_dir_beside(output_dir / ".staging", ".partial")
        else:
            output_dir.parent.mkdir(parents=True, exist_ok=True)
            staging = make_dir_beside(output_dir.parent / f".{output_dir.name}", ".partial")
    except OSError as error:
        raise EmotionError(
            f"cannot write output_dir={output_dir}: {error.strerror or error}",
            "pass output_dir=<a folder you can write to>, or make this one writable",
        ) from error
    try:
        yield staging
        publish(staging, output_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, output_dir: Path) -> None:
    """`staging`'s files as `output_dir`'s: the folder itself when there is none yet, else
    file by file under a lock on the folder, an earlier evaluation's leftovers removed."""
    if staging.parent == output_dir.parent:
        try:
            staging.rename(output_dir)
            return
        except OSError:  # another evaluation published first: replace its files instead
            if not output_dir.is_dir():
                raise
    with locked(output_dir):
        for name in sorted({*OUTPUTS, *(entry.name for entry in staging.iterdir())}):
            new, old = staging / name, output_dir / name
            if old.is_dir() and not old.is_symlink():
                aside = fresh_name(output_dir / f".{name}", ".old")
                old.rename(aside)
                shutil.rmtree(aside, ignore_errors=True)
            if os.path.lexists(new):
                os.replace(new, old)
            elif os.path.lexists(old):
                old.unlink()


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    """An exclusive flock on the folder itself (nothing left behind); waits for another
    evaluation's publishing, which takes milliseconds. Without flock, unlocked."""
    try:
        import fcntl
    except ImportError:  # not POSIX
        yield
        return
    descriptor = os.open(folder, os.O_RDONLY)
    try:
        with contextlib.suppress(OSError):  # a file system that cannot lock: unlocked
            fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)
