"""A store and a checkpoint written before the package was reorganised still load and give the
same numbers (tests/fixtures/legacy, made by the code at commit 7eb0544)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from emotion.data.datamodule import LandmarkDataModule
from emotion.inference.trained import load_trained
from emotion.store.io import read_store

LEGACY = Path(__file__).parent / "fixtures" / "legacy"


def test_an_older_store_reads_the_same() -> None:
    store = read_store(LEGACY / "store_v1.h5")
    expected = np.load(LEGACY / "expected.npz")
    assert len(store) == 23 and store.synthetic and store.class_names == ["neutral", "anxious"]
    np.testing.assert_array_equal(store.landmarks[:5], expected["landmarks"])
    np.testing.assert_array_equal(store.image_size[:5], expected["image_size"])


def test_an_older_checkpoint_gives_the_same_probabilities() -> None:
    trained = load_trained(LEGACY / "model_v1.ckpt")
    expected = np.load(LEGACY / "expected.npz")
    assert trained.normalization == "nose_unit" and trained.aspect_correction is True
    features = trained.features(expected["landmarks"], expected["image_size"])
    probabilities = trained.probabilities(features).numpy()
    np.testing.assert_allclose(probabilities, expected["probabilities"], rtol=0, atol=1e-7)


def test_an_older_checkpoint_records_the_split_todays_code_makes() -> None:
    record = torch.load(LEGACY / "model_v1.ckpt", weights_only=True)["data_settings"]
    data = LandmarkDataModule(
        str(LEGACY / "store_v1.h5"),
        aspect_correction=True,
        split_strategy="kfold",
        num_folds=record["num_folds"],
        fold=record["fold"],
        val_fraction=record["val_fraction"],
    )
    data.setup()
    for stage in ("train", "val", "test"):
        assert sorted(set(data.subjects(stage).tolist())) == record["subjects"][stage], stage


def test_the_checkpoint_reads_the_data_modules_record_where_lightning_saves_it() -> None:
    """checkpoint.py reads the record by name without importing the data room: the names
    must stay the data room's."""
    from emotion import checkpoint
    from emotion.data import record

    assert checkpoint.DATAMODULE_STATE_KEY == LandmarkDataModule.__qualname__
    assert checkpoint.PREPROCESSING_KEY == record.PREPROCESSING_KEY
    assert checkpoint.DATA_SETTINGS_KEY == record.DATA_SETTINGS_KEY


def test_resuming_with_features_made_another_way_is_refused(
    train_config, tiny_store_path: Path, tmp_path: Path
) -> None:
    import pytest

    from emotion.errors import EmotionError
    from emotion.training.train import train
    from tests.conftest import small_overrides

    run_dir = tmp_path / "run"
    train(train_config(small_overrides(tiny_store_path, run_dir)))
    changed = small_overrides(tiny_store_path, run_dir, "data.aspect_correction=false")
    changed[changed.index("trainer.max_epochs=1")] = "trainer.max_epochs=2"
    with pytest.raises(EmotionError, match="data.aspect_correction was True, now False"):
        train(train_config(changed))
