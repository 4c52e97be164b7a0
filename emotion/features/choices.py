"""The choices of the landmark recipe, one Enum each: the typed config schema validates a
config against them, and every other check reads the same members (their values are the
plain strings a checkpoint stores). Member names are the values, as configs spell them."""

from __future__ import annotations

from enum import Enum


class Normalization(str, Enum):
    nose_unit = "nose_unit"  # the reference: nose tip at the origin, farthest point at radius 1
    none = "none"  # raw coordinates
    procrustes = "procrustes"  # aligned to the template by rotation, scale and translation
    procrustes_rigid = "procrustes_rigid"  # the same, fitted on rigid landmarks only
    # nose_unit after undoing the head's rotation (FaceLandmarker's pose matrix), in pixels
    pose = "pose"


# What of a face the model reads: its normalised landmarks, FaceLandmarker's 52 blendshape
# scores, or both side by side (landmarks first). The functional form, since a config spells
# the third `landmarks+blendshapes`, which no class attribute can be called.
Features = Enum(  # type: ignore[misc]
    "Features",
    [(name, name) for name in ("landmarks", "blendshapes", "landmarks+blendshapes")],
    type=str,
)


class Baseline(str, Enum):
    none = "none"
    enrolled = "enrolled"
    session = "session"


class BaselineFeatures(str, Enum):
    difference = "difference"
    both = "both"


def values(choice: type[Enum]) -> tuple[str, ...]:
    return tuple(member.value for member in choice)
