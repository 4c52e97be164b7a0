"""A checksum of the string fields, which HDF5 cannot give them.

fletcher32 covers the numeric datasets, but HDF5 allows no filter on variable-length strings:
a flipped byte in a `subject` made one photo a new person without a word. The writer records
the sha256 of each string field's values in the root attribute `string_sha256`; the reader
compares. Stores written before it have none and still read.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from emotion.store.schema import FIX, FIX_DAMAGED, STRING_FIELDS, StoreError, plain_value

STRING_DIGEST_ATTR = "string_sha256"


def string_bytes(values: Iterable[object]) -> bytes:
    """Values as hashed for `string_sha256`: each UTF-8 value after its 4-byte length, so
    that no two lists of strings give the same bytes."""
    parts = []
    for value in values:
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts += [len(raw).to_bytes(4, "little"), raw]
    return b"".join(parts)


def check_string_digests(
    attrs: Mapping[str, Any], columns: Mapping[str, np.ndarray], path: Path
) -> None:
    """Compare the string fields with the sha256 their writer recorded (stores written before
    there was one have none and are not checked): a flipped byte in a subject would
    otherwise make one photo a new person without a word."""
    recorded = attrs.get(STRING_DIGEST_ATTR)
    if recorded is None:
        return
    try:
        digests = json.loads(plain_value(recorded))
    except (TypeError, ValueError):
        digests = None
    if not isinstance(digests, dict):
        raise StoreError(f"{path}: attribute '{STRING_DIGEST_ATTR}' is not a JSON object", FIX)
    for name in STRING_FIELDS:
        if name in digests and name in columns:
            if hashlib.sha256(string_bytes(columns[name])).hexdigest() != digests[name]:
                raise StoreError(
                    f"{path} is damaged: dataset '{name}' does not match the checksum its "
                    "writer recorded (a changed byte in its strings)",
                    FIX_DAMAGED,
                )


class StringDigests:
    """The running sha256 of each string field, fed as rows are appended."""

    def __init__(self) -> None:
        self._hashes = {name: hashlib.sha256() for name in STRING_FIELDS}

    def update(self, columns: Mapping[str, np.ndarray]) -> None:
        for name, hashed in self._hashes.items():
            hashed.update(string_bytes(columns[name]))

    def attribute(self) -> str:
        """The JSON value of `string_sha256`."""
        return json.dumps({name: hashed.hexdigest() for name, hashed in self._hashes.items()})
