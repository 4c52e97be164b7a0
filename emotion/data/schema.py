"""HDF5 landmark store, schema v1: the one contract between extraction, synthesis and training.

Layout (documented in docs/schema.md):

    landmarks   float32 (N, 478, 3)  MediaPipe's raw normalised image coordinates
    label       int64   (N,)         index into class_names
    subject     str     (N,)         the person
    split       str     (N,)         "train" (AI Hub Training) or "test" (AI Hub Validation)
    source      str     (N,)         "archive::member" or a file path
    image_size  int32   (N, 2)       (width, height) in pixels

Root attributes: schema_version, class_names (JSON list), synthetic (bool), created_at,
tool, tool_version, provenance (JSON: generator or extractor settings) and complete (bool,
written last). A store without complete=True is a partial write and is refused on read.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emotion import __version__
from emotion.errors import EmotionError

SCHEMA_VERSION = 1
NUM_LANDMARKS = 478
NUM_COORDS = 3
SPLITS = ("train", "test")

_STRING = h5py.string_dtype("utf-8")

# name -> (dtype kind accepted on read, trailing shape, dtype written)
FIELDS: dict[str, tuple[str, tuple[int, ...], Any]] = {
    "landmarks": ("f", (NUM_LANDMARKS, NUM_COORDS), np.float32),
    "label": ("iu", (), np.int64),
    "subject": ("OSU", (), _STRING),
    "split": ("OSU", (), _STRING),
    "source": ("OSU", (), _STRING),
    "image_size": ("iu", (2,), np.int32),
}
STRING_FIELDS = ("subject", "split", "source")
REQUIRED_ATTRS = ("schema_version", "class_names", "complete")


class StoreError(EmotionError):
    """A landmark store that is missing, partial or of the wrong schema."""


@dataclass
class LandmarkStore:
    """A schema-v1 store held in memory: one row per face."""

    landmarks: np.ndarray
    label: np.ndarray
    subject: np.ndarray
    split: np.ndarray
    source: np.ndarray
    image_size: np.ndarray
    class_names: list[str]
    synthetic: bool = False
    provenance: dict[str, Any] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.label.shape[0])

    def select(self, rows: np.ndarray) -> LandmarkStore:
        """The store restricted to `rows` (a boolean mask or index array)."""
        return LandmarkStore(
            landmarks=self.landmarks[rows],
            label=self.label[rows],
            subject=self.subject[rows],
            split=self.split[rows],
            source=self.source[rows],
            image_size=self.image_size[rows],
            class_names=list(self.class_names),
            synthetic=self.synthetic,
            provenance=dict(self.provenance),
            attrs=dict(self.attrs),
        )

    def columns(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in FIELDS}


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
        attrs = {key: _plain(value) for key, value in handle.attrs.items()}
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


def read_class_names(path: str | os.PathLike[str]) -> list[str]:
    """The class names of a store, without loading its arrays."""
    with h5py.File(path, "r") as handle:
        validate(handle, Path(path))
        return json.loads(_plain(handle.attrs["class_names"]))


def validate(handle: h5py.File, path: Path) -> int:
    """Check a store against schema v1 and return its row count."""
    fix = "re-create the store with emotion-extract (schema v1, see docs/schema.md)"
    for attr in REQUIRED_ATTRS:
        if attr not in handle.attrs:
            raise StoreError(f"{path}: root attribute '{attr}' is missing", fix)
    version = _plain(handle.attrs["schema_version"])
    if isinstance(version, bool) or not isinstance(version, int):
        raise StoreError(
            f"{path}: attribute 'schema_version' is {version!r}, expected the integer "
            f"{SCHEMA_VERSION}",
            fix,
        )
    if version != SCHEMA_VERSION:
        raise StoreError(
            f"{path}: schema_version is {version}, this version of emotion reads {SCHEMA_VERSION}",
            fix,
        )
    complete = _plain(handle.attrs["complete"])
    if not isinstance(complete, (bool, int)) or complete not in (0, 1):
        raise StoreError(
            f"{path}: attribute 'complete' is {complete!r}, expected a boolean (true once the "
            "writer finished)",
            fix,
        )
    if not complete:
        raise StoreError(
            f"{path} is incomplete: the write that made it was interrupted",
            "rerun the same command that wrote it; emotion-extract resumes where it stopped",
        )
    try:
        class_names = json.loads(_plain(handle.attrs["class_names"]))
    except (TypeError, ValueError) as error:
        raise StoreError(
            f"{path}: attribute 'class_names' is not a JSON list ({error})", fix
        ) from error
    if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
        raise StoreError(f"{path}: attribute 'class_names' must be a JSON list of strings", fix)
    count: int | None = None
    for name, (kinds, tail, _) in FIELDS.items():
        if name not in handle:
            raise StoreError(f"{path}: dataset '{name}' is missing", fix)
        dataset = handle[name]
        if not isinstance(dataset, h5py.Dataset):
            raise StoreError(f"{path}: '{name}' is a group, expected a dataset", fix)
        kind = "S" if h5py.check_string_dtype(dataset.dtype) else dataset.dtype.kind
        if kind not in kinds:
            raise StoreError(
                f"{path}: dataset '{name}' has dtype {dataset.dtype}, expected "
                f"{'a string' if name in STRING_FIELDS else FIELDS[name][2].__name__}",
                fix,
            )
        if tuple(dataset.shape[1:]) != tail:
            expected = (
                "("
                + ", ".join(["N", *(str(size) for size in tail)])
                + ("," if not tail else "")
                + ")"
            )
            raise StoreError(
                f"{path}: dataset '{name}' has shape {dataset.shape}, expected {expected}", fix
            )
        if count is None:
            count = dataset.shape[0]
        elif dataset.shape[0] != count:
            raise StoreError(
                f"{path}: dataset '{name}' has {dataset.shape[0]} rows, 'landmarks' has {count}",
                fix,
            )
    assert count is not None
    if count:
        labels = handle["label"][()]
        if labels.min() < 0 or labels.max() >= len(class_names):
            raise StoreError(
                f"{path}: dataset 'label' holds {int(labels.min())}..{int(labels.max())}, "
                f"outside 0..{len(class_names) - 1} for class_names {class_names}",
                fix,
            )
        splits = set(handle["split"].asstr()[()])
        unknown = splits - set(SPLITS)
        if unknown:
            raise StoreError(
                f"{path}: dataset 'split' holds {sorted(unknown)}, expected only {list(SPLITS)}",
                fix,
            )
    return count


@contextmanager
def open_store(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Open a validated store for lazy reading (large stores, metadata look-ups)."""
    with h5py.File(path, "r") as handle:
        validate(handle, Path(path))
        yield handle


def _plain(value: Any) -> Any:
    """h5py attribute values as plain Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
