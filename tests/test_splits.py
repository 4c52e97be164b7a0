"""Subject-disjoint, stratified splits: official with drop_overlap, and k-fold."""

from __future__ import annotations

import numpy as np
import pytest

from emotion.data.splits import check_split, kfold_split, official_split
from emotion.errors import EmotionError


def _people(subjects: int, frames: int = 6, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    subject = np.repeat([f"s{i:03d}" for i in range(subjects)], frames).astype(object)
    label = rng.integers(0, 2, size=subject.shape[0])
    return subject, label


def _subjects(subject: np.ndarray, rows: np.ndarray) -> set[str]:
    return set(subject[rows].tolist())


def test_kfold_tests_every_subject_exactly_once_and_never_trains_on_it() -> None:
    subject, label = _people(40)
    tested: list[str] = []
    for fold in range(5):
        split = kfold_split(subject, label, fold=fold, num_folds=5, val_fraction=0.2, seed=0)
        check_split(split, subject, label, ["neutral", "anxious"])
        train, val, test = (
            _subjects(subject, split.train),
            _subjects(subject, split.val),
            _subjects(subject, split.test),
        )
        assert not (train & test) and not (val & test) and not (train & val)
        assert len(split.train) + len(split.val) + len(split.test) == len(subject)
        tested += sorted(test)
    assert sorted(tested) == sorted(set(subject.tolist()))


def test_kfold_is_stratified_by_the_classes_a_subject_has() -> None:
    subject = np.repeat([f"s{i:02d}" for i in range(30)], 4).astype(object)
    only_anxious = np.array([int(s[1:]) < 10 for s in subject])
    label = np.where(only_anxious, 1, np.tile([0, 1], 60))
    for fold in range(5):
        split = kfold_split(subject, label, fold=fold, num_folds=5, val_fraction=0.2, seed=1)
        anxious_only_people = {s for s in _subjects(subject, split.test) if int(s[1:]) < 10}
        assert len(anxious_only_people) == 2


def test_official_split_drops_exactly_the_test_people_seen_in_training() -> None:
    subject, label = _people(30)
    split_column = np.where(np.isin(subject, [f"s{i:03d}" for i in range(20, 30)]), "test", "train")
    split_column[(subject == "s000")] = np.array(["train", "test"] * 3)
    split_column[(subject == "s001")] = np.array(["test"] * 3 + ["train"] * 3)
    kept = official_split(
        subject, label, split_column.astype(object), val_fraction=0.2, drop_overlap=True, seed=0
    )
    assert kept.overlap_subjects == ["s000", "s001"]
    assert kept.dropped_test_rows == 6
    assert _subjects(subject, kept.test) == {f"s{i:03d}" for i in range(20, 30)}
    check_split(kept, subject, label, ["neutral", "anxious"])
    loose = official_split(
        subject, label, split_column.astype(object), val_fraction=0.2, drop_overlap=False, seed=0
    )
    assert {"s000", "s001"} <= _subjects(subject, loose.test)
    with pytest.raises(EmotionError, match="in both train and test"):
        check_split(loose, subject, label, ["neutral", "anxious"])


@pytest.mark.parametrize("fold", [5, 7, -1])
def test_fold_out_of_range_says_which_folds_exist(fold: int) -> None:
    subject, label = _people(20)
    with pytest.raises(EmotionError, match=r"folds are numbered 0\.\.4"):
        kfold_split(subject, label, fold=fold, num_folds=5, val_fraction=0.2, seed=0)


def test_a_class_missing_from_a_split_is_named() -> None:
    subject = np.array(["a", "a", "b", "b", "c", "c", "d", "d"], dtype=object)
    label = np.array([0, 0, 0, 0, 0, 0, 1, 1])
    split = kfold_split(subject, label, fold=0, num_folds=2, val_fraction=0.5, seed=0)
    with pytest.raises(EmotionError, match="class '(anxious|neutral)' has no samples in the"):
        check_split(split, subject, label, ["neutral", "anxious"])


def test_same_seed_same_split() -> None:
    subject, label = _people(25)
    first = kfold_split(subject, label, fold=2, num_folds=5, val_fraction=0.2, seed=9)
    second = kfold_split(subject, label, fold=2, num_folds=5, val_fraction=0.2, seed=9)
    np.testing.assert_array_equal(first.test, second.test)
    np.testing.assert_array_equal(first.val, second.val)
