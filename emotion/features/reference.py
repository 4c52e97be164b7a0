"""The one rest-face reference: a running sum of face vectors, their count, and how it
was made.

Training's per-person means, `emotion-predict --enroll` and `--baseline session`, a served
session's enrolled faces and a stream's calibration all average face vectors (the model's
view of one face: normalised landmarks flattened, and/or blendshape scores; see
`Preprocessing.vectors`) into a reference face. They all keep this value, so "the mean of
normalised faces" is computed in one place: a float64 sum (about 11 KB whatever the number of
faces) over a count, so faces can be added one at a time, or two references merged, and the
mean is the same either way.

`how` names where the faces came from (`enrolled`, `session`, `first:3s`, ...); the model's
reference policy (`emotion.features.preprocessing.Preprocessing.reference_policy`) reads it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Reference:
    """The running sum of R (D,) face vectors, R, and how they were chosen."""

    total: np.ndarray | None = None  # float64 (D,) sum; None before the first face
    count: int = 0
    how: str = ""

    @classmethod
    def of(cls, points: np.ndarray, how: str = "") -> Reference:
        """A reference of (R, D) faces (or one (D,) face)."""
        reference = cls(how=how)
        reference.add(points)
        return reference

    def add(self, points: np.ndarray) -> None:
        """Count one (D,) face, or (R, D) faces, into the reference."""
        faces = np.asarray(points, dtype=np.float64)
        if faces.ndim == 1:
            faces = faces[None]
        if len(faces) == 0:
            return
        summed = faces.sum(axis=0)
        self.total = summed if self.total is None else self.total + summed
        self.count += len(faces)

    def merge(self, other: Reference, replace: bool = False) -> None:
        """Add `other`'s faces, or (`replace`) make them the whole reference; an empty `other`
        changes nothing."""
        if other.total is None:
            return
        if replace or self.total is None:
            self.total, self.count = other.total.copy(), other.count
        else:
            self.total, self.count = self.total + other.total, self.count + other.count

    def mean(self) -> np.ndarray | None:
        """The mean face, (D,) float32; None before any face was added."""
        if self.total is None or self.count == 0:
            return None
        return (self.total / self.count).astype(np.float32)


def reference_face(points: np.ndarray) -> np.ndarray:
    """The mean of (R, D) face vectors (R >= 1) as one (D,) reference."""
    mean = Reference.of(points).mean()
    if mean is None:
        raise ValueError("a reference face needs at least one face")
    return mean


def torch_mean(faces: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`Reference.mean` in torch ops for the exported graph: (N, R, D) faces per row as
    (N, D) means and (N, 1) counts. The mean is an explicit sum over an explicit count, so
    a row of R = 0 faces is 0 / 0 = NaN in torch and in ONNX alike (a runtime's reduction over
    nothing need not give NaN)."""
    count = torch.ones_like(faces[:, :, :1]).sum(dim=1)  # (N, 1): R per row
    return faces.sum(dim=1) / count, count


# A session of one face is that face: read against itself, every face is "no change".
MIN_SESSION_PHOTOS = 2


@dataclass(frozen=True)
class ReferencePolicy:
    """Which references a model reads faces against, from its checkpoint's baseline mode:
    prediction and serving ask this instead of assuming a rest face is enrolled."""

    baseline: str = "none"  # none | enrolled | session

    @property
    def needs_reference(self) -> bool:
        return self.baseline != "none"

    @property
    def counts_scored_faces(self) -> bool:
        """`session`: every face seen joins the reference before it is scored (labels unread),
        as training's session reference is the mean of all the person's faces."""
        return self.baseline == "session"

    @property
    def min_faces(self) -> int:
        """Faces a reference needs before a face is scored against it."""
        return MIN_SESSION_PHOTOS if self.counts_scored_faces else 1

    @property
    def default_how(self) -> str:
        """The reference a model gets when the user names none: its training mode's own for
        `session` (the faces themselves), none otherwise (a rest face must be given)."""
        return "session" if self.counts_scored_faces else "none"
