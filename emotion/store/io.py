"""Reading and writing stores (schema v2; v1 read): whole in memory, or appended in chunks.

A write goes to `<path>.partial` and takes its name only once marked complete, so a crash
never leaves a file at `path` that looks finished; reading validates against the schema
(`emotion.store.schema`) and refuses partial stores. New stores carry HDF5's fletcher32
checksum on every numeric dataset, and the sha256 of each string field in an attribute (HDF5
allows no filter on variable-length strings), so flipped bytes fail on read; stores written
before still read. A failed write (a full disk)
stops the writer at once and is a StoreError, not a crash.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import h5py
import numpy as np

from emotion.store.files import partial_path_for
from emotion.store.integrity import check_string_digests
from emotion.store.schema import (
    STRING_FIELDS,
    LandmarkStore,
    StoreError,
    extractor_of,
    plain_value,
    read_columns,
    read_field,
    validate,
    validate_landmarks,
    validate_readings,
)
from emotion.store.writer import StoreWriter

log = logging.getLogger(__name__)


def write_store(
    path: str | os.PathLike[str], store: LandmarkStore, *, tool: str = "emotion"
) -> Path:
    """Write a whole in-memory store atomically."""
    writer = StoreWriter(
        path,
        store.class_names,
        synthetic=store.synthetic,
        provenance=store.provenance,
        tool=tool,
        extractor=store.extractor,
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
    handle = _open_for_reading(path)
    with handle:
        count = validate(handle, path)
        columns = read_columns(handle, path)
        for name in STRING_FIELDS:
            columns[name] = columns[name].reshape(count)
        validate_landmarks(columns["landmarks"], path)
        validate_readings(columns["blendshapes"], columns["pose"], path)
        attrs = {key: plain_value(value) for key, value in handle.attrs.items()}
        check_string_digests(attrs, columns, path)
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
        blendshapes=columns["blendshapes"].astype(np.float32, copy=False),
        pose=columns["pose"].astype(np.float32, copy=False),
        extractor=extractor_of(attrs),
    )


def _open_for_reading(path: Path) -> h5py.File:
    try:
        return h5py.File(path, "r")
    except OSError as error:
        raise StoreError(
            f"{path} is not a readable HDF5 file ({error})",
            "re-create it with emotion-extract; a copy may have been truncated",
        ) from error


@contextmanager
def open_store(path: str | os.PathLike[str]) -> Iterator[h5py.File]:
    """Open a validated store for lazy reading (large stores, metadata look-ups); read its
    rows with `read_field`, which turns a failed checksum into a StoreError. The string
    fields are read once here, to check their checksum."""
    with _open_for_reading(Path(path)) as handle:
        validate(handle, Path(path))
        strings = {name: read_field(handle, name, Path(path)) for name in STRING_FIELDS}
        check_string_digests(handle.attrs, strings, Path(path))
        yield handle
