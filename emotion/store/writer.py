"""Appending rows to a store in chunks (`StoreWriter`): the file counts as complete only
after `finalize`, so a crash never leaves a file at the final path that looks finished."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emotion import __version__
from emotion.facemesh.landmarker import BLENDSHAPE_NAMES, extractor_identity
from emotion.store.files import (
    CHUNK_ROWS,
    COPY_ROWS,
    FIX_RESUME,
    DamagedStore,
    WriteFailed,
    open_partial,
    partial_path_for,
    refuse_link,
    write_failure,
)
from emotion.store.integrity import STRING_DIGEST_ATTR, StringDigests
from emotion.store.schema import (
    FIELDS,
    SCHEMA_VERSION,
    STRING_FIELDS,
    StoreError,
    check_class_names,
    plain_value,
    read_columns,
    validate_landmarks,
)

log = logging.getLogger(__name__)
# The float arrays, compressed: a chunk holds 1024 rows whether written or not, so uncompressed
# blendshapes and pose would make even a one-row store 280 KB (NaN columns compress to little).
COMPRESSED_FIELDS = ("landmarks", "blendshapes", "pose")


def _create_file(path: Path) -> h5py.File:
    """A new HDF5 file at `path`, never through a link: a planted one is refused, and mode
    "w-" (O_EXCL) fails rather than follow one planted after the old file was removed."""
    refuse_link(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.unlink(missing_ok=True)
        return h5py.File(path, "w-")
    except FileExistsError:
        raise StoreError(
            f"{path} appeared while it was being created (a link planted there?)",
            f"remove it and run the command again; {path.name} is the writer's own file",
        ) from None
    except OSError as error:
        raise StoreError(
            f"cannot create {path} ({error.strerror or str(error).splitlines()[0]})",
            "choose an output in a folder you can write, on a disk with free space",
        ) from None


class StoreWriter:
    """Appends rows to a store in chunks; the file counts as complete only after `finalize`.

    Writes go to `<path>.partial`; `finalize` marks it complete and renames it into place,
    so a crash never leaves a file at `path` that looks finished. The first failed write
    stops the writer: it writes nothing more (HDF5 cannot flush a file whose write failed,
    and crashed at exit trying), and every later call raises the same WriteFailed.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        class_names: list[str],
        *,
        synthetic: bool,
        provenance: Mapping[str, Any],
        tool: str = "emotion",
        chunk_rows: int | None = None,
        working_path: str | os.PathLike[str] | None = None,
        extractor: Mapping[str, Any] | None = None,
    ) -> None:
        """`working_path`: where the rows go until `finalize` (default `<path>.partial`);
        `extractor`: whose faces the rows are (default: this package's FaceLandmarker)."""
        self.path = Path(path)
        self.partial_path = Path(working_path) if working_path else partial_path_for(self.path)
        check_class_names(list(class_names), self.path)
        self.chunk_rows = chunk_rows or CHUNK_ROWS
        self._failure: WriteFailed | None = None
        self._digests = StringDigests()
        self._file = _create_file(self.partial_path)
        self.rows = 0
        with self._writing():
            self._datasets = {
                name: self._file.create_dataset(
                    name,
                    shape=(0, *tail),
                    maxshape=(None, *tail),
                    dtype=dtype,
                    chunks=(self.chunk_rows, *tail),
                    compression="lzf" if name in COMPRESSED_FIELDS else None,
                    fletcher32=name not in STRING_FIELDS,
                )
                for name, (_, tail, dtype) in FIELDS.items()
            }
            attrs = self._file.attrs
            attrs["schema_version"] = SCHEMA_VERSION
            attrs["class_names"] = json.dumps(list(class_names), ensure_ascii=False)
            attrs["synthetic"] = bool(synthetic)
            attrs["created_at"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
            attrs["tool"] = tool
            attrs["tool_version"] = __version__
            attrs["provenance"] = json.dumps(dict(provenance), ensure_ascii=False, default=str)
            attrs["extractor"] = json.dumps(dict(extractor or extractor_identity()))
            attrs["blendshape_names"] = json.dumps(list(BLENDSHAPE_NAMES))
            attrs["complete"] = False

    @contextmanager
    def _writing(self) -> Iterator[None]:
        """Around every h5py call that writes: the first failure detaches the file."""
        if self._failure is not None:
            raise self._failure
        try:
            yield
        except (OSError, RuntimeError) as error:  # what h5py raises for a failed write
            self._failure = write_failure(self.partial_path, error)
            self._detach()
            raise self._failure from None

    def _detach(self) -> None:
        """Close the file without writing to it again.

        After a failed write HDF5 can neither flush nor close the file, and it crashed
        (SIGSEGV) at interpreter exit with the file still open. With its descriptor pointed
        at /dev/null, HDF5 closes the file while the bytes on disk stay as they were at the
        failure; the next run reads them back before it resumes.
        """
        try:
            if self._file.driver == "sec2":
                descriptor = self._file.id.get_vfd_handle()
                null = os.open(os.devnull, os.O_RDWR)
                os.dup2(null, descriptor)
                os.close(null)
        except (OSError, RuntimeError, ValueError):
            pass
        try:
            self._file.close()
        except (OSError, RuntimeError):
            pass

    @property
    def failed(self) -> bool:
        """True once a write failed: the file is closed and nothing more is written."""
        return self._failure is not None

    def append(self, **columns: np.ndarray) -> None:
        """Append equally long columns (every field) and flush them to disk."""
        missing = set(FIELDS) - set(columns)
        if missing:
            raise ValueError(f"append needs every field; missing {sorted(missing)}")
        count = len(columns["label"])
        checked = {}
        for name, values in columns.items():
            if name not in FIELDS:
                raise ValueError(f"unknown field {name!r}; fields are {list(FIELDS)}")
            _, tail, _ = FIELDS[name]
            values = np.asarray(values, dtype=object if name in STRING_FIELDS else None)
            if values.shape != (count, *tail):
                raise ValueError(f"{name} has shape {values.shape}, expected {(count, *tail)}")
            checked[name] = values
        with self._writing():
            for name, values in checked.items():
                dataset = self._datasets[name]
                dataset.resize(self.rows + count, axis=0)
                dataset[self.rows :] = values
            self._file.flush()
        self._digests.update(checked)
        self.rows += count

    @classmethod
    def resume(cls, path: str | os.PathLike[str], rows: int) -> StoreWriter:
        """A writer that continues `<path>.partial` after its first `rows` rows.

        The rows are copied into a fresh file that then takes the old one's place: after a
        crash (kill -9, a full disk) the old file may hold rows past its checkpoint, space
        HDF5 had not recorded yet or a half-written chunk, and appending to it in place failed
        or made it worse. Copying reads every row back (checksums included): DamagedStore when
        one cannot be read or is all zeros (never written), with the old file left as it was.
        """
        path = Path(path)
        partial = partial_path_for(path)
        old = open_partial(partial)
        fresh = partial.with_name(partial.name + ".resume")
        with old:
            attrs = dict(old.attrs)
            try:
                class_names = json.loads(plain_value(attrs["class_names"]))
                chunk_rows = old["landmarks"].chunks[0] if old["landmarks"].chunks else None
                missing = [name for name in FIELDS if old[name].shape[0] < rows]
            except (KeyError, TypeError, ValueError, OSError, RuntimeError) as error:
                raise DamagedStore(
                    f"{partial} is not a readable partial store ({error})", FIX_RESUME
                ) from None
            if missing:
                raise DamagedStore(
                    f"{partial}: {missing} hold fewer than the {rows} rows of its checkpoint",
                    FIX_RESUME,
                )
            writer = cls(
                path,
                class_names,
                synthetic=bool(plain_value(attrs.get("synthetic", False))),
                provenance={},
                chunk_rows=chunk_rows,
                working_path=fresh,
            )
            try:
                writer._copy_rows(old, partial, rows)
                writer.update_attrs({**attrs, "complete": False})
                writer.flush()
            except BaseException:
                writer.abort()
                fresh.unlink(missing_ok=True)
                raise
        os.replace(fresh, partial)  # the open file goes with its name
        writer.partial_path = partial
        return writer

    def _copy_rows(self, source: h5py.File, path: Path, rows: int) -> None:
        """Rows 0..rows of `source`, read back in blocks and appended; DamagedStore if any
        block cannot be read or holds a landmark row of zeros (HDF5's fill value)."""
        for begin in range(0, rows, COPY_ROWS):
            block = slice(begin, min(begin + COPY_ROWS, rows))
            try:
                columns = read_columns(source, path, block)
                validate_landmarks(columns["landmarks"], path)
            except StoreError as error:
                raise DamagedStore(
                    f"{error.problem} (rows {block.start}..{block.stop - 1})", FIX_RESUME
                ) from None
            self.append(**columns)

    @property
    def attrs(self) -> h5py.AttributeManager:
        """Root attributes of the file being written, to read; write with `update_attrs`."""
        return self._file.attrs

    def update_attrs(self, values: Mapping[str, Any]) -> None:
        """Set root attributes (checkpoints, provenance); a failed write is a WriteFailed."""
        with self._writing():
            for key, value in values.items():
                self._file.attrs[key] = value

    def flush(self) -> None:
        with self._writing():
            self._file.flush()

    def finalize(self, extra_attrs: Mapping[str, Any] | None = None) -> Path:
        """Record the string fields' checksum, mark the store complete and move it to its
        final name."""
        with self._writing():
            for key, value in (extra_attrs or {}).items():
                self._file.attrs[key] = value
            self._file.attrs[STRING_DIGEST_ATTR] = self._digests.attribute()
            self._file.attrs["complete"] = True
            self._file.close()
        try:
            os.replace(self.partial_path, self.path)
        except OSError as error:
            raise StoreError(
                f"cannot move the finished {self.partial_path} to {self.path} "
                f"({error.strerror or error})",
                f"make {self.path} writable (not a folder), then run the same command again",
            ) from None
        return self.path

    def abort(self) -> None:
        """Close without marking complete; the `.partial` file stays for inspection or resume."""
        if self._failure is None and self._file.id.valid:
            try:
                self._file.close()
            except (OSError, RuntimeError) as error:  # the last metadata write failed
                self._failure = write_failure(self.partial_path, error)
                self._detach()
