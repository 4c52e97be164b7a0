"""k-fold cross-validation over the synthetic data: each person tested once, never trained on."""

from __future__ import annotations

from collections import Counter

import pytest

from emotion.data.splits import kfold_split
from emotion.store.schema import LandmarkStore


@pytest.mark.parametrize("num_folds", [3, 5])
def test_every_subject_is_tested_exactly_once(
    tiny_synthetic: LandmarkStore, num_folds: int
) -> None:
    subject, label = tiny_synthetic.subject, tiny_synthetic.label
    tested: Counter[str] = Counter()
    for fold in range(num_folds):
        split = kfold_split(
            subject, label, fold=fold, num_folds=num_folds, val_fraction=0.15, seed=0
        )
        train, val, test = (set(subject[rows].tolist()) for rows in split.as_dict().values())
        assert not train & test and not val & test and not train & val
        assert len(split.train) + len(split.val) + len(split.test) == len(label)
        tested.update(test)
    assert set(tested) == set(subject.tolist())
    assert set(tested.values()) == {1}


def test_folds_do_not_depend_on_the_model_seed(tiny_synthetic: LandmarkStore) -> None:
    """split_seed fixes the folds, so recipes and seeds pair up on the same people."""
    subject, label = tiny_synthetic.subject, tiny_synthetic.label
    first = kfold_split(subject, label, fold=1, num_folds=3, val_fraction=0.15, seed=0)
    again = kfold_split(subject, label, fold=1, num_folds=3, val_fraction=0.15, seed=0)
    assert (first.test == again.test).all() and (first.val == again.val).all()
