"""What a data module says of its split: the counts metrics.json records, and the log lines."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np

from emotion.data.record import STAGES
from emotion.data.splits import SplitIndices
from emotion.errors import counted
from emotion.store.schema import LandmarkStore

log = logging.getLogger("emotion.data.datamodule")

# Below this many people a split's metrics, and the intervals bootstrapped over its people,
# move with any single person: they are anecdotes, and are printed as such.
FEW_PEOPLE = 5
# The held-out stages, whose people metrics.json and the evaluation report name.
HELD_OUT = ("val", "test")


def describe(
    store: LandmarkStore,
    indices: SplitIndices,
    scored: dict[str, np.ndarray],
    dropped: int,
    path: str,
    class_names: list[str],
) -> dict[str, Any]:
    """Rows, people and rows per class of each stage, and what the split dropped."""
    stages = {}
    for name, rows in scored.items():
        counts = np.bincount(store.label[rows], minlength=len(class_names))
        people = sorted({str(person) for person in store.subject[rows].tolist()})
        stages[name] = {
            "rows": int(len(rows)),
            "subjects": len(people),
            "rows_per_class": dict(zip(class_names, counts.tolist(), strict=True)),
        }
        if name in HELD_OUT:
            stages[name]["people"] = people
    return {
        "path": path,
        "synthetic": store.synthetic,
        "class_names": class_names,
        "rows": len(store),
        "non_finite_rows_dropped": dropped,
        "test_subjects_seen_in_training": len(indices.overlap_subjects),
        "test_rows_dropped_for_overlap": indices.dropped_test_rows,
        "no_validation_split": indices.no_val_reason,
        "stages": stages,
        "caveats": [
            caveat
            for name in STAGES
            if (caveat := few_people_caveat(name, stages[name]["subjects"])) is not None
        ],
    }


def few_people_caveat(stage: str, people: int) -> str | None:
    """The warning a split of 1-4 people gets wherever its figures are shown."""
    if not 0 < people < FEW_PEOPLE:
        return None
    return (
        f"{stage} holds only {counted(people, 'person', 'people')} (fewer than {FEW_PEOPLE}): "
        f"its figures, and any interval bootstrapped over its people, move with each person; "
        "read them as anecdotes, and for figures that rest on everyone test each person in "
        "turn (data.split_strategy=kfold over every data.fold, then emotion-summary)"
    )


def log_split(summary: dict[str, Any], indices: SplitIndices, drop_overlap: bool) -> None:
    for name in STAGES:
        counts = summary["stages"][name]
        log.info(
            "%s: %d rows, %d subjects, per class %s",
            name,
            counts["rows"],
            counts["subjects"],
            counts["rows_per_class"],
        )
    if indices.no_val_reason:
        log.info("no validation split: %s", indices.no_val_reason)
    for caveat in summary["caveats"]:
        log.warning("%s", caveat)
    if indices.overlap_subjects:
        log.warning(
            "%d test subjects also appear in training%s",
            len(indices.overlap_subjects),
            f"; dropped their {indices.dropped_test_rows} test rows"
            if drop_overlap
            else " (data.drop_overlap=false: the test set is not subject-disjoint)",
        )
