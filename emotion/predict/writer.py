"""One output row per photo or video frame, as CSV or JSON Lines.

With a file, rows go to `<file>.<pid>.<random>.partial` (flushed each batch, so a long run
shows progress on disk) and the file takes its name only when every row is written: a
half-written output never looks complete. The temporary name is each run's own, so two runs to
the same file never write into one file: the last to finish leaves its complete rows, and a run
that fails removes its temporary file. Without a file, rows go to standard output, as Unix
tools do.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import sys
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

from emotion.errors import EmotionError
from emotion.rundir import create_beside
from emotion.store.classes import emotion_in_name

FORMATS = (".csv", ".jsonl")


def true_label(source: str, class_names: list[str]) -> str | None:
    """The class a photo's folder, archive or file name gives it, as extraction reads labels
    (the deepest part of the path that names exactly one), if the model knows that class."""
    for part in reversed(re.split(r"[/\\]|::", str(source))):
        emotion = emotion_in_name(part)
        if emotion:
            return emotion if emotion in class_names else None
    return None


def columns(class_names: list[str]) -> list[str]:
    return [
        "source",
        "frame",
        "face",
        "faces",  # how many FaceMesh found; the largest is the one scored
        "status",
        "error",
        *(f"p_{name}" for name in class_names),
        "label",
        "true_label",  # from the folder or archive name (AI Hub's `불안`, `neutral/`), else blank
        *(f"smoothed_p_{name}" for name in class_names),
        "smoothed_label",
        "reference",
        "trained_on_synthetic",
    ]


class RowWriter:
    """Writes rows as they come; `finish` publishes a file output under its real name."""

    def __init__(self, path: Path | None, class_names: list[str], row_format: str) -> None:
        self.path = path
        self.format = row_format
        self.columns = columns(class_names)
        self.class_names = list(class_names)
        self.rows = 0
        self.partial: Path | None = None
        if path is None:
            self._handle: TextIO = sys.stdout
        else:
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                descriptor, self.partial = create_beside(path, ".partial")
            except OSError as error:
                raise EmotionError(
                    f"cannot write -o {path}: {error.strerror or error}",
                    "choose a folder you can write to, or make this one writable",
                ) from error
            self._handle = os.fdopen(descriptor, "w", newline="", encoding="utf-8")
        self._csv: csv.DictWriter[str] | None = None
        if self.format == ".csv":
            self._csv = csv.DictWriter(self._handle, fieldnames=self.columns)
            self._csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        full = {key: row.get(key) for key in self.columns}
        if full["true_label"] is None and full["source"]:
            full["true_label"] = true_label(full["source"], self.class_names)
        if self._csv is not None:
            self._csv.writerow({k: "" if v is None else v for k, v in full.items()})
        else:
            self._handle.write(json.dumps(full, ensure_ascii=False) + "\n")
        self.rows += 1

    def flush(self) -> None:
        self._handle.flush()

    def finish(self) -> None:
        """Close and rename the temporary file to `<file>` (atomically: a reader sees the old
        file or the new one, whole); the rows are complete."""
        if self.partial is not None and self.path is not None:
            self._handle.close()
            os.replace(self.partial, self.path)
            self.partial = None

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self.path is not None:
            self._handle.close()
            if self.partial is not None:  # not published: a failed run leaves no file behind
                self.partial.unlink(missing_ok=True)
        elif kind is None:
            self._handle.flush()
        else:  # the rows so far still reach the reader, unless it is the reader that went away
            with contextlib.suppress(OSError):
                self._handle.flush()
