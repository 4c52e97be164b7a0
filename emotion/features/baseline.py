"""The personal baseline: read a face as a change from the same person's rest face.

People differ in face shape far more than one expression changes it. A model that sees one
photo has to tell who someone is from what their face is doing; one that also sees the
person's rest face only has to read the change. Both go through the same geometry first
(`emotion.features.preprocessing`), then the model reads `photo - reference` (or that
difference beside the photo itself, `baseline_features=both`).

Protocols (`data.baseline`), the same in training, validation and test:
- `enrolled`: the reference is the mean of `enroll_per_subject` of the person's neutral
  photos, chosen reproducibly (by `split_seed` and the person). Those photos are references
  only: never scored, never trained on. Choosing them is the one use of a validation or test
  person's labels, standing for a deployment that asks for a relaxed face first. A person
  without a neutral photo has no reference, and one whose every photo became the reference
  has nothing left to score: neither is scored (both counted and named).
- `session`: the reference is the mean of all the person's photos in that split; no label is
  read. It assumes several photos per person, and a mix of expressions shifts the reference
  towards them (a session of mostly anxious photos makes anxious look like the person's norm).
  A person with one photo is their own reference (a difference of zero, whatever the face),
  so is not scored either.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

import numpy as np

from emotion.features.choices import Baseline, BaselineFeatures, values
from emotion.features.reference import MIN_SESSION_PHOTOS, reference_face

BASELINES = values(Baseline)
BASELINE_FEATURES = values(BaselineFeatures)


@dataclass
class References:
    """One stage's references: per person the reference face, the rows it was made from,
    and who could not get one."""

    faces: dict[str, np.ndarray] = field(default_factory=dict)  # person -> (D,) face vector
    rows: dict[str, np.ndarray] = field(default_factory=dict)  # person -> reference rows
    unscored: list[str] = field(default_factory=list)  # people without a reference

    @property
    def reference_rows(self) -> np.ndarray:
        found = [rows for rows in self.rows.values()]
        return np.concatenate(found) if found else np.empty(0, dtype=np.int64)


def enrolled_rows(
    neutral_rows: np.ndarray, count: int, seed: int | tuple[int, ...], person: str
) -> np.ndarray:
    """The person's reference photos: `count` of their neutral rows (all, when fewer), chosen
    by a generator seeded with `seed` and the person, so no other person changes the choice."""
    if len(neutral_rows) <= count:
        return np.sort(neutral_rows)
    seeds = seed if isinstance(seed, tuple) else (seed,)
    rng = np.random.default_rng([*seeds, zlib.crc32(person.encode("utf-8"))])
    return np.sort(rng.choice(neutral_rows, size=count, replace=False))


def enrolled_references(
    points: np.ndarray,
    subject: np.ndarray,
    label: np.ndarray,
    rows: np.ndarray,
    neutral_label: int,
    count: int,
    seed: int | tuple[int, ...],
) -> References:
    """`enrolled` references of the people of `rows` (one stage)."""
    found = References()
    for person in sorted(set(subject[rows].tolist())):
        mine = rows[subject[rows] == person]
        neutral = mine[label[mine] == neutral_label]
        if len(neutral) == 0:
            found.unscored.append(str(person))
            continue
        chosen = enrolled_rows(neutral, count, seed, str(person))
        found.rows[str(person)] = chosen
        found.faces[str(person)] = reference_face(points[chosen])
    return found


def session_references(points: np.ndarray, subject: np.ndarray, rows: np.ndarray) -> References:
    """`session` references: the mean of each person's rows of one stage; labels unread."""
    found = References()
    for person in sorted(set(subject[rows].tolist())):
        mine = rows[subject[rows] == person]
        if len(mine) < MIN_SESSION_PHOTOS:
            found.unscored.append(str(person))
            continue
        found.faces[str(person)] = reference_face(points[mine])
    return found


def combine(vectors: np.ndarray, reference: np.ndarray, how: str) -> np.ndarray:
    """(N, D) face vectors and their (N, D) or (D,) reference as (N, D) or (N, 2D) model
    input; N may be 0 (a person left with nothing to score)."""
    difference = (vectors - reference).reshape(len(vectors), -1)
    if how == "difference":
        return np.ascontiguousarray(difference, dtype=np.float32)
    flat = vectors.reshape(len(vectors), -1)
    return np.concatenate([difference, flat], axis=1).astype(np.float32)
