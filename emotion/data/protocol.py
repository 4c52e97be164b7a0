"""The personal-baseline protocol on a split: each stage's references, the features read
against them, and which rows are scored (`emotion.features.baseline` says why and how)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np

from emotion.data.splits import SplitIndices
from emotion.errors import EmotionError
from emotion.features.baseline import (
    References,
    combine,
    enrolled_references,
    session_references,
)
from emotion.features.preprocessing import Preprocessing
from emotion.store.schema import LandmarkStore

log = logging.getLogger(__name__)


@dataclass
class Protocol:
    """Features of every row, each stage's scored rows and its references."""

    features: np.ndarray  # (N, D) float32; rows that are not scored hold zeros
    scored: dict[str, np.ndarray]
    references: dict[str, References]

    def summary(self, store: LandmarkStore, preprocessing: Preprocessing) -> dict[str, Any]:
        """What metrics.json and the eval report say about the protocol, stage by stage."""
        stages = {}
        for stage, found in self.references.items():
            unscored = np.isin(store.subject, np.asarray(found.unscored, dtype=object))
            stages[stage] = {
                "scored_rows": int(len(self.scored[stage])),
                "reference_rows": int(len(found.reference_rows)),
                "people_with_a_reference": len(found.faces),
                "unscored_people": list(found.unscored),
                "unscored_rows": int(unscored.sum()),
            }
        return {
            "protocol": preprocessing.baseline,
            "enroll_per_subject": preprocessing.enroll_per_subject,
            "features": preprocessing.baseline_features,
            "stages": stages,
        }


def apply_protocol(
    points: np.ndarray,
    store: LandmarkStore,
    indices: SplitIndices,
    preprocessing: Preprocessing,
    class_names: list[str],
    seed: int,
) -> Protocol:
    """References per stage and person; every row read against its person's reference."""
    features = np.zeros((len(store), preprocessing.input_dim), dtype=np.float32)
    protocol = Protocol(features, {}, {})
    for stage, rows in indices.as_dict().items():
        read_stage(protocol, stage, rows, points, store, preprocessing, class_names, (seed,))
        found = protocol.references[stage]
        if found.unscored:
            log.warning(
                "%s: %d people are not scored (no reference photo, or none left once the "
                "reference was taken): %s",
                stage,
                len(found.unscored),
                ", ".join(found.unscored[:5]) + (", ..." if len(found.unscored) > 5 else ""),
            )
    return protocol


def read_stage(
    protocol: Protocol,
    stage: str,
    rows: np.ndarray,
    points: np.ndarray,
    store: LandmarkStore,
    preprocessing: Preprocessing,
    class_names: list[str],
    seed: tuple[int, ...],
) -> None:
    """One stage's references (drawn with `seed`), its scored rows and their features."""
    if preprocessing.baseline == "enrolled":
        found = enrolled_references(
            points,
            store.subject,
            store.label,
            rows,
            neutral_label(class_names, preprocessing),
            preprocessing.enroll_per_subject,
            seed,
        )
    else:
        found = session_references(points, store.subject, rows)
    keep = np.isin(store.subject[rows], np.asarray(list(found.faces), dtype=object))
    keep &= ~np.isin(rows, found.reference_rows)
    scored = rows[keep]
    for person, face in found.faces.items():
        mine = scored[store.subject[scored] == person]
        if len(mine) == 0:  # every photo of theirs became the reference
            found.unscored.append(person)
            continue
        protocol.features[mine] = combine(points[mine], face, preprocessing.baseline_features)
    found.unscored.sort()
    protocol.scored[stage] = scored
    protocol.references[stage] = found


def neutral_label(class_names: list[str], preprocessing: Preprocessing) -> int:
    """The class whose photos can be enrolled; -1 when the protocol reads no label."""
    if preprocessing.baseline != "enrolled":
        return -1
    if "neutral" not in class_names:
        raise EmotionError(
            "data.baseline=enrolled enrols each person's neutral photos, but the store has "
            f"no 'neutral' class ({class_names})",
            "use data.baseline=session, or a store with neutral photos",
        )
    return class_names.index("neutral")
