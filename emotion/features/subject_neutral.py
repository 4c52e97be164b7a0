"""Subtract each person's mean neutral face, so features measure change from that person's rest.

People differ in face shape far more than one expression changes it. Subtracting a person's
own neutral face removes identity (face shape) and leaves the expression displacement.

Leak-free by construction: the neutral faces come from TRAINING rows only (their labels are
training labels). A person with neutral photos in the training rows gets their own mean
neutral face; everyone else (with subject-disjoint splits: every val and test person) gets
the mean neutral face of all training rows. Val and test labels are never read, and val/test
landmarks never enter a reference.

With subject-disjoint splits this means training rows are centred on their own person and
evaluation rows on an average person, a train/test mismatch; the option pays off only when
evaluated people are enrolled with neutral training photos (e.g. `split_strategy=official`
with `drop_overlap=false`, or a deployment that records a neutral photo first).
"""

from __future__ import annotations

import numpy as np

from emotion.errors import EmotionError


def neutral_references(
    points: np.ndarray,
    subject: np.ndarray,
    label: np.ndarray,
    train_rows: np.ndarray,
    neutral_label: int,
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-subject mean neutral face from training rows, and the training mean neutral face."""
    neutral_train = train_rows[label[train_rows] == neutral_label]
    if len(neutral_train) == 0:
        raise EmotionError(
            "data.normalization=subject_neutral needs neutral rows in the training split",
            "use another data.normalization, or a store with neutral photos",
        )
    fallback = points[neutral_train].mean(axis=0)
    own: dict[str, np.ndarray] = {}
    people = subject[neutral_train]
    for person in np.unique(people):
        own[str(person)] = points[neutral_train[people == person]].mean(axis=0)
    return own, fallback


def subtract_subject_neutral(
    points: np.ndarray,
    subject: np.ndarray,
    label: np.ndarray,
    train_rows: np.ndarray,
    neutral_label: int,
) -> tuple[np.ndarray, dict[str, int]]:
    """(N, K, 3) points minus each row's reference; also how many rows got their own face.

    Only `label[train_rows]` is read: labels of other rows cannot change the result.
    """
    own, fallback = neutral_references(points, subject, label, train_rows, neutral_label)
    result = np.empty_like(points)
    counted = {"rows_with_own_neutral": 0, "rows_with_mean_neutral": 0}
    for person in np.unique(subject):
        rows = np.flatnonzero(subject == person)
        reference = own.get(str(person))
        if reference is None:
            reference = fallback
            counted["rows_with_mean_neutral"] += len(rows)
        else:
            counted["rows_with_own_neutral"] += len(rows)
        result[rows] = points[rows] - reference
    return result, counted
