"""One writer per store: a second run to the same output is refused before it touches a file.

Without it, a second `emotion-extract` to the same output reopens the first one's `.partial`
with mode "w", truncating hours of work before HDF5's own file lock fails.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

from emotion.errors import EmotionError
from emotion.locks import LockHeld, exclusive_lock


def lock_path(store_path: Path) -> Path:
    """`data/x.h5` -> `data/x.h5.lock`, beside the store and its `.partial`."""
    return store_path.with_name(store_path.name + ".lock")


@contextmanager
def store_lock(store_path: Path, tool: str) -> Iterator[None]:
    """Hold `<store>.lock` (emotion.locks) while writing the store; the store's folder is
    made first (with its parents), as the writer would make it."""
    store_path.parent.mkdir(parents=True, exist_ok=True)
    held = ExitStack()
    try:
        held.enter_context(
            exclusive_lock(lock_path(store_path), f"{os.getpid()} {tool}", "choose another output")
        )
    except LockHeld as other:
        holder = other.holder.split()
        who = f"{holder[1]} (pid {holder[0]})" if len(holder) >= 2 else "run (pid unknown)"
        raise EmotionError(
            f"{store_path} is being written by another {who}",
            f"wait for it to finish or stop it (it keeps its work in {store_path.name}"
            ".partial and resumes), or choose another output",
        ) from None
    with held:
        yield
