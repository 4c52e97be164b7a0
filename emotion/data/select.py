"""Which rows go where: rows dropped before anything trains, and the split of the rest.

Non-finite landmarks are dropped and counted, classes without rows are dropped when asked,
and `data.split_strategy` picks the subject-disjoint split (`emotion.data.splits`).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from emotion.data.settings import DataSettings
from emotion.data.splits import SplitIndices, every_row_tested, kfold_split, official_split
from emotion.store.schema import LandmarkStore

log = logging.getLogger(__name__)


def split_store(store: LandmarkStore, settings: DataSettings) -> SplitIndices:
    """The rows of each stage, by `data.split_strategy`."""
    if settings.split_strategy == "none":
        return every_row_tested(store.label)
    if settings.split_strategy == "kfold":
        return kfold_split(
            store.subject,
            store.label,
            fold=settings.fold,
            num_folds=settings.num_folds,
            val_fraction=settings.val_fraction,
            seed=settings.split_seed,
            min_val_subjects=settings.min_val_subjects,
        )
    return official_split(
        store.subject,
        store.label,
        store.split,
        val_fraction=settings.val_fraction,
        drop_overlap=settings.drop_overlap,
        seed=settings.split_seed,
        min_val_subjects=settings.min_val_subjects,
    )


def drop_non_finite(store: LandmarkStore) -> tuple[LandmarkStore, int]:
    """Remove rows whose landmarks hold NaN or inf, and say how many went."""
    finite = np.isfinite(store.landmarks).all(axis=(1, 2))
    dropped = int((~finite).sum())
    if dropped:
        examples = store.source[~finite][:3].tolist()
        log.warning(
            "dropped %d of %d rows with NaN or inf landmarks (e.g. %s)",
            dropped,
            len(store),
            examples,
        )
        store = store.select(finite)
    return store, dropped


def drop_empty_classes(store: LandmarkStore) -> LandmarkStore:
    """Remove classes without a single row and renumber the labels, keeping the class order."""
    counts = np.bincount(store.label, minlength=len(store.class_names))
    present = [index for index, count in enumerate(counts) if count > 0]
    if len(present) == len(store.class_names):
        return store
    missing = [name for name, count in zip(store.class_names, counts, strict=True) if count == 0]
    log.warning("data.drop_empty_classes: the store has no rows of %s; dropped them", missing)
    new_label = np.full(len(store.class_names), -1, dtype=np.int64)
    new_label[present] = np.arange(len(present))
    return dataclasses.replace(
        store,
        label=new_label[store.label],
        class_names=[store.class_names[index] for index in present],
    )
