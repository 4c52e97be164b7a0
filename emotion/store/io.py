"""Reading and writing schema-v1 stores: whole in memory, or appended in chunks.

A write goes to `<path>.partial` and takes its name only once marked complete, so a crash
never leaves a file at `path` that looks finished; reading validates against the schema
(`emotion.store.schema`) and refuses partial stores.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emotion import __version__
from emotion.store.schema import (
    FIELDS,
    SCHEMA_VERSION,
    STRING_FIELDS,
    LandmarkStore,
    StoreError,
    plain_value,
    validate,
)


class StoreWriter:
    """Appends rows to a store in chunks; the file counts as complete only after `finalize`.

    Writes go to `<path>.partial`; `finalize` marks it complete and renames it into place,
    so a crash never leaves a file at `path` that looks finished.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        class_names: list[str],
        *,
        synthetic: bool,
        provenance: Mapping[str, Any],
        tool: str = "emotion",
        chunk_rows: int = 1024,
    ) -> None:
        self.path = Path(path)
        self.partial_path = partial_path_for(self.path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = h5py.File(self.partial_path, "w")
        for name, (_, tail, dtype) in FIELDS.items():
            self._file.create_dataset(
                name,
                shape=(0, *tail),
                maxshape=(None, *tail),
                dtype=dtype,
                chunks=(chunk_rows, *tail),
                compression="lzf" if name == "landmarks" else None,
            )
        attrs = self._file.attrs
        attrs["schema_version"] = SCHEMA_VERSION
        attrs["class_names"] = json.dumps(list(class_names), ensure_ascii=False)
        attrs["synthetic"] = bool(synthetic)
        attrs["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        attrs["tool"] = tool
        attrs["tool_version"] = __version__
        attrs["provenance"] = json.dumps(dict(provenance), ensure_ascii=False, default=str)
        attrs["complete"] = False
        self.rows = 0

    def append(self, **columns: np.ndarray) -> None:
        """Append equally long columns (all six fields) and flush them to disk."""
        missing = set(FIELDS) - set(columns)
        if missing:
            raise ValueError(f"append needs every field; missing {sorted(missing)}")
        count = len(columns["label"])
        for name, values in columns.items():
            if name not in FIELDS:
                raise ValueError(f"unknown field {name!r}; fields are {list(FIELDS)}")
            _, tail, _ = FIELDS[name]
            values = np.asarray(values, dtype=object if name in STRING_FIELDS else None)
            if values.shape != (count, *tail):
                raise ValueError(f"{name} has shape {values.shape}, expected {(count, *tail)}")
            dataset = self._file[name]
            dataset.resize(self.rows + count, axis=0)
            dataset[self.rows :] = values
        self.rows += count
        self._file.flush()

    @classmethod
    def resume(cls, path: str | os.PathLike[str], rows: int) -> StoreWriter:
        """Reopen `<path>.partial` to append after its first `rows` rows.

        Rows past `rows` were written after the caller's last checkpoint (a crash between
        appending and checkpointing) and are dropped, so the resumed file matches a clean run.
        """
        writer = cls.__new__(cls)
        writer.path = Path(path)
        writer.partial_path = partial_path_for(writer.path)
        writer._file = h5py.File(writer.partial_path, "a")
        for name in FIELDS:
            if writer._file[name].shape[0] < rows:
                writer._file.close()
                raise ValueError(f"{writer.partial_path}: '{name}' holds fewer than {rows} rows")
            writer._file[name].resize(rows, axis=0)
        writer._file.attrs["complete"] = False
        writer.rows = rows
        return writer

    @property
    def attrs(self) -> h5py.AttributeManager:
        """Root attributes of the file being written (for resume checkpoints)."""
        return self._file.attrs

    def flush(self) -> None:
        self._file.flush()

    def finalize(self, extra_attrs: Mapping[str, Any] | None = None) -> Path:
        """Mark the store complete and move it to its final name."""
        for key, value in (extra_attrs or {}).items():
            self._file.attrs[key] = value
        self._file.attrs["complete"] = True
        self._file.close()
        os.replace(self.partial_path, self.path)
        return self.path

    def abort(self) -> None:
        """Close without marking complete; the `.partial` file stays for inspection or resume."""
        if self._file.id.valid:
            self._file.close()


def partial_path_for(path: str | os.PathLike[str]) -> Path:
    path = Path(path)
    return path.with_name(path.name + ".partial")


def write_store(
    path: str | os.PathLike[str], store: LandmarkStore, *, tool: str = "emotion"
) -> Path:
    """Write a whole in-memory store atomically."""
    writer = StoreWriter(
        path, store.class_names, synthetic=store.synthetic, provenance=store.provenance, tool=tool
    )
    try:
        writer.append(**store.columns())
        return writer.finalize()
    except BaseException:
        writer.abort()
        writer.partial_path.unlink(missing_ok=True)
        raise


def read_store(path: str | os.PathLike[str]) -> LandmarkStore:
    """Read and validate a whole store into memory; errors name the offending field."""
    path = Path(path)
    if not path.exists():
        hint = ""
        if partial_path_for(path).exists():
            hint = f" (a partial write, {partial_path_for(path).name}, is beside it)"
        raise StoreError(
            f"no landmark store at {path}{hint}",
            "create one with `emotion-extract source.root=<AI Hub folder> output="
            f"{path}`, or train on the synthetic default by leaving data.path unset",
        )
    try:
        handle = h5py.File(path, "r")
    except OSError as error:
        raise StoreError(
            f"{path} is not a readable HDF5 file ({error})",
            "re-create it with emotion-extract; a copy may have been truncated",
        ) from error
    with handle:
        count = validate(handle, path)
        columns: dict[str, np.ndarray] = {}
        for name in FIELDS:
            dataset = handle[name]
            if name in STRING_FIELDS:
                columns[name] = np.asarray(dataset.asstr()[()], dtype=object).reshape(count)
            else:
                columns[name] = dataset[()]
        attrs = {key: plain_value(value) for key, value in handle.attrs.items()}
    return LandmarkStore(
        landmarks=columns["landmarks"].astype(np.float32, copy=False),
        label=columns["label"].astype(np.int64, copy=False),
        subject=columns["subject"],
        split=columns["split"],
        source=columns["source"],
        image_size=columns["image_size"].astype(np.int32, copy=False),
        class_names=json.loads(attrs["class_names"]),
        synthetic=bool(attrs.get("synthetic", False)),
        provenance=json.loads(attrs.get("provenance", "{}")),
        attrs=attrs,
    )


@contextmanager
def open_store(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Open a validated store for lazy reading (large stores, metadata look-ups)."""
    with h5py.File(path, "r") as handle:
        validate(handle, Path(path))
        yield handle
