"""Subject-disjoint, class-stratified splits: no person is in two of train, val and test.

Subjects are grouped into strata by the set of classes they have photos of, shuffled with a
fixed seed, and dealt round-robin into parts. The deal continues across strata, so every part
gets about as many subjects of each kind.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

from emotion.errors import EmotionError
from emotion.features.choices import values


# none: every row is a test row, for scoring a model trained elsewhere (emotion-eval only).
class SplitStrategy(str, Enum):
    """How a store's people are split: its own test rows, subject folds, or none (scoring)."""

    official = "official"
    kfold = "kfold"
    none = "none"


SPLIT_STRATEGIES = values(SplitStrategy)
# Fewer validation people than this make checkpoint selection mostly noise (a warning says so).
MEANINGFUL_VAL_SUBJECTS = 10
SCORING_ONLY = "split_strategy=none"
# k-fold settings as the configs default them; only `kfold` reads them.
DEFAULT_FOLD = 0
DEFAULT_NUM_FOLDS = 5


@dataclass
class SplitIndices:
    """Row indices of each stage, plus what was removed to keep the test set strict."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    overlap_subjects: list[str] = field(default_factory=list)
    dropped_test_rows: int = 0
    # Why there is no validation split, when there is none.
    no_val_reason: str | None = None

    def as_dict(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}


def deal_subjects(subject: np.ndarray, label: np.ndarray, parts: int, seed: int) -> list[list[str]]:
    """Deal the subjects of these rows into `parts` groups, stratified by their class set."""
    classes_of: dict[str, set[int]] = defaultdict(set)
    for person, target in zip(subject.tolist(), label.tolist(), strict=True):
        classes_of[person].add(int(target))
    strata: dict[tuple[int, ...], list[str]] = defaultdict(list)
    for person in sorted(classes_of):
        strata[tuple(sorted(classes_of[person]))].append(person)
    rng = np.random.default_rng(seed)
    groups: list[list[str]] = [[] for _ in range(parts)]
    turn = int(rng.integers(parts))
    for key in sorted(strata):
        people = strata[key]
        for position in rng.permutation(len(people)):
            groups[turn % parts].append(people[position])
            turn += 1
    return groups


def _rows_of(subject: np.ndarray, people: list[str], candidates: np.ndarray) -> np.ndarray:
    chosen = np.isin(subject[candidates], np.asarray(people, dtype=object))
    return candidates[chosen]


def _carve_val(
    subject: np.ndarray,
    label: np.ndarray,
    pool: np.ndarray,
    val_fraction: float,
    seed: int,
    min_subjects: int = 0,
) -> tuple[np.ndarray, np.ndarray, str | None]:
    """Split pool rows into (train, val, why there is no val) by subject: val holds about
    val_fraction of the people, with every class of the pool whenever the people allow it
    (`_val_people`). No val at all when val_fraction is 0, or when it would hold fewer than
    `min_subjects` people: on a small store those people train better than they select."""
    if not 0.0 <= val_fraction < 1.0:
        raise EmotionError(
            f"data.val_fraction={val_fraction} must lie in [0, 1)",
            "use e.g. data.val_fraction=0.15, or 0 for no validation split (with select=last)",
        )
    nothing = np.empty(0, dtype=pool.dtype)
    if val_fraction == 0:
        return pool, nothing, "data.val_fraction=0"
    parts = max(2, round(1.0 / val_fraction))
    groups = deal_subjects(subject[pool], label[pool], parts, seed + 7919)
    people = _val_people(groups, subject[pool], label[pool])
    if len(people) < min_subjects:
        return (
            pool,
            nothing,
            (
                f"data.val_fraction={val_fraction} would validate on {len(people)} of "
                f"{len(set(subject[pool].tolist()))} people, fewer than "
                f"data.min_val_subjects={min_subjects}: they train instead"
            ),
        )
    val = _rows_of(subject, people, pool)
    return np.setdiff1d(pool, val, assume_unique=True), val, None


def _val_people(groups: list[list[str]], subject: np.ndarray, label: np.ndarray) -> list[str]:
    """The first dealt group, unless it lacks a class: then the first group that has every
    class, else the first group plus the fewest people (in dealt order) that bring the missing
    classes while training keeps them all. On a small store (7 people in 5 folds) the first
    group can be empty or hold one person with one class; validation then could not score."""
    classes_of: dict[str, set[int]] = defaultdict(set)
    for person, target in zip(subject.tolist(), label.tolist(), strict=True):
        classes_of[person].add(int(target))
    needed = set(label.tolist())

    def covered(people: list[str]) -> set[int]:
        return set().union(*(classes_of[person] for person in people))

    for group in groups:
        if covered(group) == needed:
            return group
    chosen = list(groups[0])
    for person in (person for group in groups[1:] for person in group):
        missing = needed - covered(chosen)
        if not missing:
            break
        left = [other for other in classes_of if other not in chosen and other != person]
        if classes_of[person] & missing and covered(left) == needed:
            chosen.append(person)
    return chosen


def official_split(
    subject: np.ndarray,
    label: np.ndarray,
    split: np.ndarray,
    *,
    val_fraction: float,
    drop_overlap: bool,
    seed: int,
    min_val_subjects: int = 0,
) -> SplitIndices:
    """Test = the store's `test` rows (AI Hub Validation); val is carved from `train` by subject."""
    rows = np.arange(len(label))
    pool = rows[split == "train"]
    test = rows[split == "test"]
    if len(test) == 0:
        raise EmotionError(
            "the store has no rows with split=='test', which split_strategy=official needs",
            "use data.split_strategy=kfold, or extract the AI Hub Validation folder too",
        )
    if len(pool) == 0:
        raise EmotionError(
            "the store has no rows with split=='train'",
            "use data.split_strategy=kfold, or extract the AI Hub Training folder too",
        )
    overlap = sorted(set(subject[test].tolist()) & set(subject[pool].tolist()))
    dropped = 0
    if drop_overlap and overlap:
        keep = ~np.isin(subject[test], np.asarray(overlap, dtype=object))
        dropped = int((~keep).sum())
        test = test[keep]
        if len(test) == 0:
            raise EmotionError(
                "every test subject also appears in training, so drop_overlap left no test rows",
                "use data.split_strategy=kfold for subject-disjoint evaluation on this store",
            )
    train, val, why = _carve_val(subject, label, pool, val_fraction, seed, min_val_subjects)
    return SplitIndices(
        train, val, test, overlap_subjects=overlap, dropped_test_rows=dropped, no_val_reason=why
    )


def kfold_split(
    subject: np.ndarray,
    label: np.ndarray,
    *,
    fold: int,
    num_folds: int,
    val_fraction: float,
    seed: int,
    min_val_subjects: int = 0,
) -> SplitIndices:
    """Fold `fold` of `num_folds` subject folds is test; val is carved from the other folds."""
    if num_folds < 2:
        raise EmotionError(f"data.num_folds={num_folds}; k-fold needs at least 2 folds")
    if not 0 <= fold < num_folds:
        raise EmotionError(
            f"data.fold={fold} is out of range for data.num_folds={num_folds}",
            f"folds are numbered 0..{num_folds - 1}, e.g. -m data.fold=range({num_folds})",
        )
    people = len(set(subject.tolist()))
    if people < num_folds:
        raise EmotionError(
            f"the store has {people} subjects, fewer than data.num_folds={num_folds}",
            f"use data.num_folds={max(2, people)} or fewer",
        )
    rows = np.arange(len(label))
    groups = deal_subjects(subject, label, num_folds, seed)
    test = _rows_of(subject, groups[fold], rows)
    pool = np.setdiff1d(rows, test, assume_unique=True)
    train, val, why = _carve_val(subject, label, pool, val_fraction, seed + fold, min_val_subjects)
    return SplitIndices(train, val, test, no_val_reason=why)


def every_row_tested(label: np.ndarray) -> SplitIndices:
    """split_strategy=none: no training or validation rows; every row is scored."""
    nothing = np.empty(0, dtype=np.int64)
    return SplitIndices(nothing, nothing, np.arange(len(label)), no_val_reason=SCORING_ONLY)


def check_split(
    indices: SplitIndices, subject: np.ndarray, label: np.ndarray, class_names: list[str]
) -> None:
    """Refuse splits that share people or lack a class, with a message that says what to change."""
    stages = indices.as_dict()
    people = {stage: set(subject[rows].tolist()) for stage, rows in stages.items()}
    for first, second in (("train", "val"), ("train", "test"), ("val", "test")):
        shared = people[first] & people[second]
        if shared:
            raise EmotionError(
                f"{len(shared)} subjects are in both {first} and {second}, "
                f"e.g. {sorted(shared)[:3]}",
                "set data.drop_overlap=true or use data.split_strategy=kfold",
            )
    for stage, rows in stages.items():
        scoring_only = indices.no_val_reason == SCORING_ONLY
        if len(rows) == 0 and (stage == "val" and indices.no_val_reason or scoring_only):
            continue  # no validation split chosen, or split_strategy=none (scoring only)
        counts = np.bincount(label[rows], minlength=len(class_names))
        for index, name in enumerate(class_names):
            if counts[index] == 0:
                raise EmotionError(
                    f"class '{name}' has no samples in the {stage} split "
                    f"({len(people[stage])} subjects, {len(rows)} rows)",
                    "give the split more subjects: lower data.num_folds or raise "
                    "data.val_fraction (or train without validation: data.val_fraction=0 "
                    "select=last), or check the store's per-class counts in its extraction "
                    "report",
                )


def check_scored_classes(
    scored: dict[str, np.ndarray],
    label: np.ndarray,
    class_names: list[str],
    baseline: str,
    enroll_per_subject: int,
) -> None:
    """A baseline sets reference photos aside, never scored: a split left without a class
    would train or test on one class and report a perfect score."""
    for stage, rows in scored.items():
        if stage == "val" and len(rows) == 0:
            continue  # no validation split chosen
        counts = np.bincount(label[rows], minlength=len(class_names))
        missing = [name for index, name in enumerate(class_names) if counts[index] == 0]
        if missing:
            raise EmotionError(
                f"with data.baseline={baseline} (data.enroll_per_subject="
                f"{enroll_per_subject}), the {stage} split has no {missing[0]!r} "
                f"photos left to score: the reference photos used them up",
                "lower data.enroll_per_subject (1 leaves the most photos to score), give the "
                "split more people, or use data.baseline=session",
            )
