"""References a client holds: the rest-face sum and count the server computed for it,
handed to the client and sent back with each landmark frame, so no server process has to
keep a person's reference (any process can answer any frame).

Only the server normalises faces (no normalisation is written again in JavaScript), so it
makes the reference and the client stores it as it came: `{"model", "count", "total"}`, the
total a base64 float32 little-endian (face_dim,) sum. `model` names the model it was made
for (a hash of the checkpoint's preprocessing record and class names): a reference made for
another model is refused, never read as a face of this one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json

import numpy as np

from emotion.features.reference import Reference
from emotion.inference.face_model import FaceModel
from emotion.serve.errors import ApiError
from emotion.serve.schemas import HeldReference

# Far past a calibration (3 s at 15 frames a second) or a long enrolment, and small enough
# that the float32 total keeps its mean to 1e-7.
MAX_HELD_FACES = 100_000
FORGET = "forget the stored rest face and calibrate again"


def model_key(trained: FaceModel) -> str:
    """The model a reference is made for: what reads a face vector (its preprocessing and
    classes), not where the checkpoint lies."""
    record = {"preprocessing": trained.preprocessing.to_record(), "classes": trained.class_names}
    text = json.dumps(record, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def held_of(reference: Reference, key: str) -> HeldReference | None:
    """A reference as the client keeps it; None for one without faces."""
    if reference.total is None or reference.count == 0:
        return None
    data = np.asarray(reference.total, dtype="<f4").tobytes()
    return HeldReference(
        model=key, count=reference.count, total=base64.b64encode(data).decode("ascii")
    )


def mean_of(held: HeldReference, key: str, face_dim: int) -> np.ndarray:
    """The (face_dim,) mean face of a client's reference, checked like any input: a 422
    naming what is wrong (another model's, a wrong size, not finite, a count out of range)."""
    if held.model != key:
        raise ApiError(
            422,
            f"this rest face was made for another model ({held.model[:32]!r}; this server's "
            f"model is {key!r})",
            FORGET,
        )
    if not 1 <= held.count <= MAX_HELD_FACES:
        raise ApiError(
            422, f"a reference's count must be 1 to {MAX_HELD_FACES}, got {held.count}", FORGET
        )
    try:
        data = base64.b64decode(held.total, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError(422, "a reference's total is not base64", FORGET) from None
    if len(data) != 4 * face_dim:
        raise ApiError(
            422,
            f"a reference's total holds {len(data)} bytes; this model's face vector is "
            f"{face_dim} float32 ({4 * face_dim} bytes)",
            FORGET,
        )
    total = np.frombuffer(data, dtype="<f4").astype(np.float64)
    if not np.isfinite(total).all():
        raise ApiError(422, "a reference's total holds NaN or infinite values", FORGET)
    mean = Reference(total, held.count).mean()
    assert mean is not None  # count >= 1
    return mean
