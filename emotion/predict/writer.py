"""One output row per photo or video frame, as CSV or JSON Lines (chosen by the suffix)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from types import TracebackType
from typing import Any, TextIO

FORMATS = (".csv", ".jsonl")


def columns(class_names: list[str]) -> list[str]:
    return [
        "source",
        "frame",
        "face",
        "status",
        "error",
        *(f"p_{name}" for name in class_names),
        "label",
        *(f"smoothed_p_{name}" for name in class_names),
        "smoothed_label",
    ]


class RowWriter:
    """Writes rows as they come (flushes each batch), so a long run shows progress on disk."""

    def __init__(self, path: Path, class_names: list[str]) -> None:
        self.path = path
        self.format = path.suffix.lower()
        self.columns = columns(class_names)
        self.rows = 0
        path.parent.mkdir(parents=True, exist_ok=True)
        self._handle: TextIO = path.open("w", newline="", encoding="utf-8")
        self._csv: csv.DictWriter[str] | None = None
        if self.format == ".csv":
            self._csv = csv.DictWriter(self._handle, fieldnames=self.columns)
            self._csv.writeheader()

    def write(self, row: dict[str, Any]) -> None:
        full = {key: row.get(key) for key in self.columns}
        if self._csv is not None:
            self._csv.writerow({k: "" if v is None else v for k, v in full.items()})
        else:
            self._handle.write(json.dumps(full, ensure_ascii=False) + "\n")
        self.rows += 1

    def flush(self) -> None:
        self._handle.flush()

    def __enter__(self) -> RowWriter:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._handle.close()
