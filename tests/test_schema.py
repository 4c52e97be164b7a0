"""Schema v1: round trip, and errors that name the missing or mismatched field."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest

from emotion.store.files import partial_path_for
from emotion.store.io import read_store, write_store
from emotion.store.schema import SCHEMA_VERSION, LandmarkStore, StoreError
from emotion.store.writer import StoreWriter


def test_round_trip_keeps_every_column_and_attribute(
    tmp_path: Path, tiny_synthetic: LandmarkStore
) -> None:
    path = write_store(tmp_path / "store.h5", tiny_synthetic)
    loaded = read_store(path)
    for name, column in tiny_synthetic.columns().items():
        np.testing.assert_array_equal(getattr(loaded, name), column, err_msg=name)
    assert loaded.landmarks.dtype == np.float32 and loaded.landmarks.shape[1:] == (478, 3)
    assert loaded.class_names == tiny_synthetic.class_names
    assert loaded.synthetic is True
    assert loaded.attrs["schema_version"] == SCHEMA_VERSION
    assert loaded.attrs["complete"] is True or loaded.attrs["complete"] == 1
    as_json = json.loads(json.dumps(tiny_synthetic.provenance, default=str))
    assert loaded.provenance == as_json  # tuples come back as lists, as JSON has them
    assert not partial_path_for(path).exists()


def test_korean_subjects_survive(make_store, store_reader) -> None:
    path = make_store([0, 1], ["사람_1", "사람_2"])
    assert store_reader(path).subject.tolist() == ["사람_1", "사람_2"]


def _corrupt(path: Path, edit) -> None:
    with h5py.File(path, "a") as handle:
        edit(handle)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda h: h.__delitem__("subject"), "dataset 'subject' is missing"),
        (
            lambda h: (h.__delitem__("label"), h.create_dataset("label", data=np.zeros(4))),
            "dataset 'label' has dtype float64",
        ),
        (
            lambda h: (
                h.__delitem__("landmarks"),
                h.create_dataset("landmarks", data=np.zeros((4, 468, 3), "f4")),
            ),
            "dataset 'landmarks' has shape (4, 468, 3), expected (N, 478, 3)",
        ),
        (
            lambda h: (
                h.__delitem__("image_size"),
                h.create_dataset("image_size", data=np.zeros((3, 2), "i4")),
            ),
            "dataset 'image_size' has 3 rows",
        ),
        (lambda h: h.attrs.__setitem__("schema_version", 3), "schema_version is 3"),
        (lambda h: h.attrs.__delitem__("class_names"), "attribute 'class_names' is missing"),
        (lambda h: h.attrs.__setitem__("complete", False), "is incomplete"),
        (lambda h: h["label"].__setitem__(0, 5), "outside 0..1"),
    ],
)
def test_schema_errors_name_the_field(make_store, edit, message: str) -> None:
    path = make_store([0, 1, 0, 1], ["a", "b", "c", "d"])
    _corrupt(path, edit)
    with pytest.raises(StoreError) as error:
        read_store(path)
    assert message in str(error.value)
    assert "fix:" in str(error.value)


def test_missing_store_names_the_command_that_makes_one(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="emotion-extract"):
        read_store(tmp_path / "nope.h5")


def test_not_hdf5_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "text.h5"
    path.write_text("not hdf5")
    with pytest.raises(StoreError, match="not a readable HDF5 file"):
        read_store(path)


def test_unfinished_writer_never_looks_complete(
    tmp_path: Path, tiny_synthetic: LandmarkStore
) -> None:
    path = tmp_path / "store.h5"
    writer = StoreWriter(path, tiny_synthetic.class_names, synthetic=True, provenance={})
    writer.append(**tiny_synthetic.select(np.arange(10)).columns())
    writer.abort()
    assert not path.exists()
    with pytest.raises(StoreError, match="partial write"):
        read_store(path)
