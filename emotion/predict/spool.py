"""Items parked on disk: with frames read a batch at a time, what keeps `emotion-predict`'s
memory flat however long the video.

`FaceMeshRunner.run` reads a whole video into one Outcome (about 20 KB a sampled frame once
features and probabilities are made; 2 GB at the default cap of 100 000 frames). Prediction
instead takes the frames a batch at a time (`FaceMeshRunner.video_chunks`), scores them and
writes their rows before reading on. What must wait for the whole input (a session
reference) waits on disk (`Spool`), not in memory.
"""

from __future__ import annotations

import pickle
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class Spool:
    """Entries parked in an anonymous temporary file, read back once in the order put.

    The file has no name (or loses it at once), so it goes with the process, also on kill -9;
    it is this process's own, so what pickle reads back is what it wrote."""

    def __init__(self, folder: Path | None = None) -> None:
        self._file = tempfile.TemporaryFile(dir=folder)
        self.entries = 0

    def put(self, entry: Any) -> None:
        pickle.dump(entry, self._file, protocol=pickle.HIGHEST_PROTOCOL)
        self.entries += 1

    def drain(self) -> Iterator[Any]:
        """Every entry, in the order put; the spool is then empty."""
        self._file.flush()
        self._file.seek(0)
        for _ in range(self.entries):
            yield pickle.load(self._file)
        self._file.seek(0)
        self._file.truncate()
        self.entries = 0

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
