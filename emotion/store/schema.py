"""HDF5 landmark store, schema v2: the one contract between extraction, synthesis and training.

Layout (documented in docs/schema.md):

    landmarks   float32 (N, 478, 3)  MediaPipe's raw normalised image coordinates
    blendshapes float32 (N, 52)      FaceLandmarker's blendshape scores (NaN where not known)
    pose        float32 (N, 4, 4)    its facial transformation matrix (NaN where not known)
    label       int64   (N,)         index into class_names
    subject     str     (N,)         the person
    split       str     (N,)         "train" (AI Hub Training) or "test" (AI Hub Validation)
    source      str     (N,)         "archive::member" or a file path
    image_size  int32   (N, 2)       (width, height) in pixels

Root attributes: schema_version, class_names (JSON list), synthetic (bool), created_at,
tool, tool_version, extractor (JSON: name, mediapipe_version, model_sha256 of the landmarker
whose faces these are), blendshape_names (JSON list),
provenance (JSON: generator or extractor settings), string_sha256 (JSON:
per string field, the sha256 of its values; HDF5 has no checksum filter for strings) and
complete (bool, written last). A store without complete=True is a partial write and is
refused on read. Version 1 stores (landmarks only, from the legacy FaceMesh graph) still
read: their blendshapes and pose are NaN and their extractor is `LEGACY_EXTRACTOR`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from emotion.errors import EmotionError
from emotion.facemesh.landmarker import BLENDSHAPE_NAMES, NUM_BLENDSHAPES, extractor_identity
from emotion.facemesh.mesh import NUM_COORDS, NUM_LANDMARKS

SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)
SPLITS = ("train", "test")
POSE_SHAPE = (4, 4)

_STRING = h5py.string_dtype("utf-8")

# name -> (dtype kind accepted on read, trailing shape, dtype written)
FIELDS: dict[str, tuple[str, tuple[int, ...], Any]] = {
    "landmarks": ("f", (NUM_LANDMARKS, NUM_COORDS), np.float32),
    "label": ("iu", (), np.int64),
    "subject": ("OSU", (), _STRING),
    "split": ("OSU", (), _STRING),
    "source": ("OSU", (), _STRING),
    "image_size": ("iu", (2,), np.int32),
    "blendshapes": ("f", (NUM_BLENDSHAPES,), np.float32),
    "pose": ("f", POSE_SHAPE, np.float32),
}
# What a version 1 store holds; the rest read as NaN.
V1_FIELDS = ("landmarks", "label", "subject", "split", "source", "image_size")
# The extractor of every version 1 store: MediaPipe's retired FaceMesh graph (its landmarks
# differ from FaceLandmarker's by 0.0085 on the nose-unit scale, four times the training noise).
LEGACY_EXTRACTOR: dict[str, str] = {
    "name": "mediapipe-face-mesh-legacy",
    "mediapipe_version": "0.10.21 or earlier",
    "model_sha256": "",
}
STRING_FIELDS = ("subject", "split", "source")
REQUIRED_ATTRS = ("schema_version", "class_names", "complete")
# FaceMesh's x and y are fractions of the image (a little past 0..1 where the frame cuts the
# face) and z is on the scale of x: a finite coordinate past this is a broken converter or a
# damaged file, never a face (one 1e30 took a trained AUROC from 0.0 to 0.148 unannounced).
MAX_COORD = 1e3
# A face narrower or shorter than this (in the units of x and y) is a point or a line, not a
# face: its normalisation would divide by a scale that float32 rounds to zero.
MIN_EXTENT = 1e-4


class StoreError(EmotionError):
    """A landmark store that is missing, partial or of the wrong schema."""


def same_extractor(first: dict[str, Any], second: dict[str, Any]) -> bool:
    """Whether two extractor records name the same landmarks: the same extractor and model
    file (the mediapipe version is recorded, not compared)."""
    return first.get("name") == second.get("name") and first.get("model_sha256", "") == second.get(
        "model_sha256", ""
    )


def describe_extractor(extractor: dict[str, Any]) -> str:
    name = str(extractor.get("name", "unknown"))
    sha = str(extractor.get("model_sha256", ""))
    return f"{name} (model {sha[:12]}...)" if sha else name


def missing_readings(rows: int) -> tuple[np.ndarray, np.ndarray]:
    """NaN blendshapes and pose for `rows` faces whose extractor gave neither."""
    return (
        np.full((rows, NUM_BLENDSHAPES), np.nan, dtype=np.float32),
        np.full((rows, *POSE_SHAPE), np.nan, dtype=np.float32),
    )


@dataclass
class LandmarkStore:
    """A store held in memory: one row per face. Blendshapes and pose are NaN where the
    extractor gave none (version 1 stores, SYNTHETIC data)."""

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
    blendshapes: np.ndarray | None = None  # (N, 52); None: NaN
    pose: np.ndarray | None = None  # (N, 4, 4); None: NaN
    extractor: dict[str, Any] = field(default_factory=extractor_identity)

    def __post_init__(self) -> None:
        blendshapes, pose = missing_readings(len(self))
        if self.blendshapes is None:
            self.blendshapes = blendshapes
        if self.pose is None:
            self.pose = pose

    def __len__(self) -> int:
        return int(self.label.shape[0])

    @property
    def has_blendshapes(self) -> bool:
        """Every row has its blendshape scores (an empty store has nothing missing)."""
        return bool(np.isfinite(self.blendshapes).all())

    @property
    def has_pose(self) -> bool:
        return bool(np.isfinite(self.pose).all())

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
            blendshapes=self.blendshapes[rows],
            pose=self.pose[rows],
            extractor=dict(self.extractor),
        )

    def columns(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in FIELDS}


FIX = "re-create the store with emotion-extract (schema v2, see docs/schema.md)"
FIX_DAMAGED = (
    "restore the file from a good copy, or re-create it with the command that wrote it "
    "(emotion-extract, emotion-synth)"
)


def read_field(handle: h5py.File, name: str, path: Path, rows: slice | None = None) -> np.ndarray:
    """One field's values (strings as str): a chunk whose checksum (fletcher32) fails or that
    cannot be read back is a StoreError naming the file and field, not an h5py traceback."""
    dataset = handle[name]
    selection = slice(None) if rows is None else rows
    try:
        if name in STRING_FIELDS:
            return np.asarray(dataset.asstr()[selection], dtype=object)
        return dataset[selection]
    except (OSError, RuntimeError) as error:  # h5py raises both for HDF5 read errors
        text = str(error).splitlines()[0]
        why = (
            "a checksum does not match"
            if "checksum" in text.lower() or "filter returned failure" in text.lower()
            else text
        )
        raise StoreError(
            f"{path} is damaged: dataset '{name}' cannot be read back ({why})", FIX_DAMAGED
        ) from None


def check_class_names(class_names: list[str], path: Path) -> None:
    """Class names are the keys of every per-class metric: two alike would overwrite each other."""
    twice = sorted({name for name in class_names if class_names.count(name) > 1})
    if twice:
        raise StoreError(
            f"{path}: class_names {class_names} name {twice} more than once",
            "give every class its own name (each label index one class)",
        )


def validate(handle: h5py.File, path: Path) -> int:
    """Check a store against its schema (v1 or v2) and return its row count."""
    class_names = validate_attributes(handle, path)
    count = validate_datasets(handle, path)
    if count:
        validate_values(handle, path, class_names)
    return count


def version_of(handle: h5py.File) -> int:
    return int(plain_value(handle.attrs["schema_version"]))


def fields_of(handle: h5py.File) -> tuple[str, ...]:
    """The fields a validated store holds: all of them, or version 1's."""
    return tuple(FIELDS) if version_of(handle) >= 2 else V1_FIELDS


def extractor_of(attrs: Any) -> dict[str, Any]:
    """A validated store's extractor record (version 1: the legacy FaceMesh graph)."""
    if "extractor" not in attrs:
        return dict(LEGACY_EXTRACTOR)
    return json.loads(plain_value(attrs["extractor"]))


def read_columns(handle: h5py.File, path: Path, rows: slice | None = None) -> dict[str, Any]:
    """Every field's values, rows `rows` (all by default); a version 1 store's blendshapes
    and pose as NaN."""
    columns = {name: read_field(handle, name, path, rows) for name in fields_of(handle)}
    if "blendshapes" not in columns:
        columns["blendshapes"], columns["pose"] = missing_readings(len(columns["label"]))
    return columns


def validate_attributes(handle: h5py.File, path: Path) -> list[str]:
    """The root attributes: present, of the right type, the right version, complete."""
    for attr in REQUIRED_ATTRS:
        if attr not in handle.attrs:
            raise StoreError(f"{path}: root attribute '{attr}' is missing", FIX)
    version = plain_value(handle.attrs["schema_version"])
    if isinstance(version, bool) or not isinstance(version, int):
        raise StoreError(
            f"{path}: attribute 'schema_version' is {version!r}, expected the integer "
            f"{SCHEMA_VERSION}",
            FIX,
        )
    if version not in READABLE_VERSIONS:
        raise StoreError(
            f"{path}: schema_version is {version}, this version of emotion reads "
            f"{' and '.join(map(str, READABLE_VERSIONS))}",
            FIX,
        )
    complete = plain_value(handle.attrs["complete"])
    if not isinstance(complete, (bool, int)) or complete not in (0, 1):
        raise StoreError(
            f"{path}: attribute 'complete' is {complete!r}, expected a boolean (true once the "
            "writer finished)",
            FIX,
        )
    if not complete:
        raise StoreError(
            f"{path} is incomplete: the write that made it was interrupted",
            "rerun the same command that wrote it; emotion-extract resumes where it stopped",
        )
    try:
        class_names = json.loads(plain_value(handle.attrs["class_names"]))
    except (TypeError, ValueError) as error:
        raise StoreError(
            f"{path}: attribute 'class_names' is not a JSON list ({error})", FIX
        ) from error
    if not isinstance(class_names, list) or not all(isinstance(n, str) for n in class_names):
        raise StoreError(f"{path}: attribute 'class_names' must be a JSON list of strings", FIX)
    check_class_names(class_names, path)
    if version >= 2:
        for attr in ("extractor", "blendshape_names"):
            if attr not in handle.attrs:
                raise StoreError(f"{path}: root attribute '{attr}' is missing", FIX)
        try:
            extractor = json.loads(plain_value(handle.attrs["extractor"]))
            names = json.loads(plain_value(handle.attrs["blendshape_names"]))
        except (TypeError, ValueError) as error:
            raise StoreError(
                f"{path}: attribute 'extractor' or 'blendshape_names' is not JSON ({error})", FIX
            ) from error
        if not isinstance(extractor, dict) or not isinstance(extractor.get("name"), str):
            raise StoreError(
                f"{path}: attribute 'extractor' must be a JSON object with a name", FIX
            )
        if names != list(BLENDSHAPE_NAMES):
            raise StoreError(
                f"{path}: attribute 'blendshape_names' is not FaceLandmarker's 52 names in "
                "their order",
                FIX,
            )
    return class_names


def validate_datasets(handle: h5py.File, path: Path) -> int:
    """Every field present, as a dataset of the right dtype and shape, all equally long."""
    count: int | None = None
    for name in fields_of(handle):
        kinds, tail, _ = FIELDS[name]
        if name not in handle:
            raise StoreError(f"{path}: dataset '{name}' is missing", FIX)
        dataset = handle[name]
        if not isinstance(dataset, h5py.Dataset):
            raise StoreError(f"{path}: '{name}' is a group, expected a dataset", FIX)
        kind = "S" if h5py.check_string_dtype(dataset.dtype) else dataset.dtype.kind
        if kind not in kinds:
            raise StoreError(
                f"{path}: dataset '{name}' has dtype {dataset.dtype}, expected "
                f"{'a string' if name in STRING_FIELDS else FIELDS[name][2].__name__}",
                FIX,
            )
        if tuple(dataset.shape[1:]) != tail:
            expected = "(" + ", ".join(["N", *map(str, tail)]) + ("," if not tail else "") + ")"
            raise StoreError(
                f"{path}: dataset '{name}' has shape {dataset.shape}, expected {expected}", FIX
            )
        if count is None:
            count = dataset.shape[0]
        elif dataset.shape[0] != count:
            raise StoreError(
                f"{path}: dataset '{name}' has {dataset.shape[0]} rows, 'landmarks' has {count}",
                FIX,
            )
    assert count is not None
    return count


def validate_values(handle: h5py.File, path: Path, class_names: list[str]) -> None:
    """Labels index the class names; splits are train or test; image sizes are positive."""
    labels = read_field(handle, "label", path)
    if labels.min() < 0 or labels.max() >= len(class_names):
        raise StoreError(
            f"{path}: dataset 'label' holds {int(labels.min())}..{int(labels.max())}, "
            f"outside 0..{len(class_names) - 1} for class_names {class_names}",
            FIX,
        )
    unknown = set(read_field(handle, "split", path)) - set(SPLITS)
    if unknown:
        raise StoreError(
            f"{path}: dataset 'split' holds {sorted(unknown)}, expected only {list(SPLITS)}",
            FIX,
        )
    # A photo has a width and a height; 0 is also what HDF5 returns for rows never written.
    bad = np.flatnonzero((read_field(handle, "image_size", path) <= 0).any(axis=1))
    if bad.size:
        raise StoreError(
            f"{path}: dataset 'image_size' is 0 or negative in {bad.size} of {labels.shape[0]} "
            f"rows (first: row {int(bad[0])})",
            FIX,
        )


def validate_landmarks(landmarks: np.ndarray, path: Path) -> None:
    """Refuse rows with a finite coordinate past ±MAX_COORD, and rows whose points span no
    area (all zero, one point repeated, one line): no face looks like either.

    Neither emotion-extract (a row only where FaceMesh found a face) nor emotion-synth writes
    one; zeros are what HDF5 returns for rows allocated but never written (an interrupted
    writer), and a converter's placeholder for "no face". Dropping them quietly would train
    on a store whose other rows may be as wrong, so the store is refused, counted and named.
    NaN rows are not caught here: the data module drops and counts those.
    """
    if not landmarks.shape[0]:
        return
    flat = landmarks.reshape(landmarks.shape[0], -1)
    with np.errstate(invalid="ignore"):
        outside = (np.abs(flat) > MAX_COORD).any(axis=1)  # NaN and inf: the data module's
    outside &= np.isfinite(flat).all(axis=1)
    bad = np.flatnonzero(outside)
    if bad.size:
        first = flat[bad[0]]
        raise StoreError(
            f"{path}: dataset 'landmarks' holds {bad.size} of {flat.shape[0]} rows with a "
            f"coordinate past ±{MAX_COORD:g} (first: row {int(bad[0])}, "
            f"{float(first[np.argmax(np.abs(first))]):g}); FaceMesh's coordinates are "
            "fractions of the image",
            f"{FIX}; a converter should store FaceMesh's normalised coordinates, not pixels",
        )
    with np.errstate(invalid="ignore"):
        extent = np.ptp(landmarks[..., :2], axis=1).min(axis=1)
    bad = np.flatnonzero(extent < MIN_EXTENT)
    if bad.size:
        raise StoreError(
            f"{path}: dataset 'landmarks' holds {bad.size} of {flat.shape[0]} rows whose "
            f"points span less than {MIN_EXTENT:g} across (all zero, one point or one line; "
            f"first: row {int(bad[0])}); they are not faces",
            f"{FIX}; a converter should leave out the photos where no face was found",
        )


# Blendshape scores are probabilities; the pose's translation is in centimetres.
MAX_POSE = 1e4


def validate_readings(blendshapes: np.ndarray, pose: np.ndarray, path: Path) -> None:
    """Refuse blendshape scores outside 0..1 and pose matrices past ±MAX_POSE or infinite
    (NaN is "not known": a version 1 store's, SYNTHETIC data's)."""
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero(
            (np.isinf(blendshapes) | (blendshapes < -1e-3) | (blendshapes > 1 + 1e-3)).any(axis=1)
        )
    if bad.size:
        raise StoreError(
            f"{path}: dataset 'blendshapes' holds {bad.size} rows with a score outside 0..1 "
            f"(first: row {int(bad[0])})",
            f"{FIX}; blendshape scores are FaceLandmarker's, each 0..1",
        )
    flat = pose.reshape(len(pose), 16)
    with np.errstate(invalid="ignore"):
        bad = np.flatnonzero((np.isinf(flat) | (np.abs(flat) > MAX_POSE)).any(axis=1))
    if bad.size:
        raise StoreError(
            f"{path}: dataset 'pose' holds {bad.size} rows past ±{MAX_POSE:g} or infinite "
            f"(first: row {int(bad[0])})",
            f"{FIX}; pose is FaceLandmarker's facial transformation matrix",
        )


def plain_value(value: Any) -> Any:
    """h5py attribute values as plain Python values."""
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value
