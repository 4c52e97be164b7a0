"""The DataModule: one read, non-finite rows dropped, whole-batch indexing, train-only noise."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from emotion.data import datamodule as datamodule_module
from emotion.data.batches import BatchIndices, TensorRows
from emotion.data.datamodule import LandmarkDataModule
from emotion.errors import EmotionError


def test_setup_reads_the_store_once_and_splits_by_subject(
    tiny_store_path: Path, monkeypatch
) -> None:
    calls = []
    real_read = datamodule_module.read_store
    monkeypatch.setattr(datamodule_module, "read_store", lambda p: calls.append(p) or real_read(p))
    data = LandmarkDataModule(str(tiny_store_path), batch_size=32)
    data.setup("fit")
    data.setup("test")
    assert len(calls) == 1
    assert data.class_names == ["neutral", "anxious"] and data.input_dim == 1434
    people = {stage: set(data.subjects(stage).tolist()) for stage in ("train", "val", "test")}
    assert not people["train"] & people["val"]
    assert not people["train"] & people["test"]
    assert not people["val"] & people["test"]
    assert data.summary["synthetic"] is True


def test_non_finite_rows_are_counted_dropped_and_warned(make_store, caplog) -> None:
    rows = 48
    landmarks = np.random.default_rng(0).random((rows, 478, 3), dtype=np.float32)
    landmarks[3, 10, 0] = np.nan
    landmarks[7, 0, 2] = np.inf
    subject = [f"p{i % 12}" for i in range(rows)]
    split = ["test" if i % 12 >= 9 else "train" for i in range(rows)]
    path = make_store([i % 2 for i in range(rows)], subject, split, landmarks=landmarks)
    data = LandmarkDataModule(str(path), val_fraction=0.3, batch_size=8)
    with caplog.at_level(logging.WARNING):
        data.setup()
    assert data.summary["non_finite_rows_dropped"] == 2
    assert sum(stage["rows"] for stage in data.summary["stages"].values()) == rows - 2
    assert "dropped 2 of 48 rows with NaN or inf" in caplog.text


def test_batches_are_whole_index_tensors_not_per_sample_items(tiny_store_path: Path) -> None:
    data = LandmarkDataModule(str(tiny_store_path), batch_size=32)
    data.setup()
    seen: list[torch.Tensor] = []
    rows = data.rows("train")
    original = TensorRows.__getitem__
    TensorRows.__getitem__ = lambda self, index: seen.append(index) or original(self, index)
    try:
        batches = list(data.train_dataloader())
    finally:
        TensorRows.__getitem__ = original
    assert len(seen) == len(batches)
    assert batches[0][0].shape == (32, 1434) and batches[0][1].dtype == torch.int64
    assert sum(len(b[1]) for b in batches) >= len(rows) - 1


def test_ddp_shards_are_disjoint_equal_and_evaluation_covers_every_row() -> None:
    shards = [
        list(BatchIndices(103, 10, shuffle=True, seed=1, rank=r, world_size=2)) for r in (0, 1)
    ]
    assert len(shards[0]) == len(shards[1])
    first, second = (torch.cat(s).tolist() for s in shards)
    assert not set(first) & set(second)
    evaluation = [
        torch.cat(list(BatchIndices(103, 10, shuffle=False, rank=r, world_size=2))) for r in (0, 1)
    ]
    assert sorted(torch.cat(evaluation).tolist()) == list(range(103))


def test_shuffle_changes_with_the_epoch_and_repeats_with_the_seed() -> None:
    sampler = BatchIndices(50, 50, shuffle=True, seed=4)
    epoch0 = next(iter(sampler))
    sampler.set_epoch(1)
    epoch1 = next(iter(sampler))
    sampler.set_epoch(0)
    assert not torch.equal(epoch0, epoch1) and torch.equal(epoch0, next(iter(sampler)))


@pytest.mark.parametrize(("training", "changed"), [(True, True), (False, False)])
def test_noise_is_added_to_training_batches_only(
    tiny_store_path: Path, training: bool, changed: bool
) -> None:
    data = LandmarkDataModule(str(tiny_store_path), noise_std=0.01)
    data.trainer = SimpleNamespace(training=training)  # what Lightning sets during fit
    features, labels = torch.zeros(64, 1434), torch.zeros(64, dtype=torch.int64)
    noisy, same_labels = data.on_after_batch_transfer((features, labels), 0)
    assert torch.equal(same_labels, labels)
    assert (not torch.equal(noisy, features)) == changed
    if changed:
        assert 0.008 < float(noisy.std()) < 0.012


def test_unknown_options_are_refused_with_the_choices(tiny_store_path: Path) -> None:
    with pytest.raises(EmotionError, match="nose_unit"):
        LandmarkDataModule(str(tiny_store_path), normalization="nose")
    with pytest.raises(EmotionError, match="kfold"):
        LandmarkDataModule(str(tiny_store_path), split_strategy="random")


def test_missing_store_is_not_replaced_by_synthetic_data(tmp_path: Path) -> None:
    data = LandmarkDataModule(
        str(tmp_path / "mine.h5"), synthetic={"output": str(tmp_path / "synthetic.h5"), "seed": 0}
    )
    with pytest.raises(EmotionError, match="emotion-extract"):
        data.setup()
    assert not (tmp_path / "mine.h5").exists()


def test_the_synthetic_default_is_made_by_training_not_by_the_data_module(
    tmp_path: Path,
) -> None:
    """The data module never writes: a missing store is refused, naming the command that
    makes one; `ensure_default_store` (what training calls) generates the default."""
    from emotion.store.schema import StoreError
    from emotion.synthetic.generate import ensure_default_store

    output = tmp_path / "synthetic.h5"
    synthetic = {"output": str(output), "num_subjects": 20, "frames_per_subject": 8, "seed": 1}
    data = LandmarkDataModule(str(output), synthetic=synthetic)
    with pytest.raises(StoreError):
        data.setup()
    assert not output.exists()
    ensure_default_store(tmp_path / "other.h5", synthetic)  # not the default's path
    assert not list(tmp_path.iterdir())
    ensure_default_store(output, synthetic)
    data.setup()
    assert output.exists() and data.is_synthetic
