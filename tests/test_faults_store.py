"""Stores that are wrong in ways no one would see: flipped bytes, rows that are no face,
image sizes of 0, one class name twice; and `emotion-synth`'s output checks."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np
import pytest

from emotion.store.io import read_store, write_store
from emotion.store.schema import FIELDS, LandmarkStore, StoreError
from emotion.store.writer import StoreWriter
from tests.commands import emotion


def flip_first_chunk(path: Path, name: str) -> None:
    """Change one byte in the first HDF5 chunk of dataset `name`, as a bad disk or copy would."""
    with h5py.File(path, "r") as handle:
        info = handle[name].id.get_chunk_info(0)
    with path.open("r+b") as handle:
        handle.seek(info.byte_offset)
        original = handle.read(1)
        handle.seek(info.byte_offset)
        handle.write(bytes([original[0] ^ 0x01]))


@pytest.mark.parametrize("name", ["label", "landmarks", "image_size"])
def test_a_flipped_byte_fails_the_checksum_and_names_the_file(
    tmp_path: Path, tiny_synthetic: LandmarkStore, name: str
) -> None:
    """A label 0 read back as 1 would pass every other check: only the checksum sees it."""
    path = write_store(tmp_path / "flipped.h5", tiny_synthetic)
    flip_first_chunk(path, name)
    with pytest.raises(StoreError) as error:
        read_store(path)
    assert str(path) in error.value.problem and f"dataset '{name}'" in error.value.problem
    assert "checksum" in error.value.problem and "good copy" in (error.value.fix or "")


@pytest.mark.slow
def test_a_damaged_store_is_an_error_in_the_command_that_reads_it(
    tmp_path: Path, tiny_synthetic: LandmarkStore
) -> None:
    path = write_store(tmp_path / "flipped.h5", tiny_synthetic)
    flip_first_chunk(path, "label")
    done = emotion(
        "emotion.training",
        "data=store",
        f"data.path={path}",
        "trainer.accelerator=cpu",
        cwd=tmp_path,
    )
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"error: {path} is damaged: dataset 'label'" in done.stderr and "fix:" in done.stderr


def test_a_store_written_before_checksums_still_reads(
    tmp_path: Path, tiny_synthetic: LandmarkStore
) -> None:
    path = tmp_path / "old.h5"
    with h5py.File(path, "w") as handle:
        for name, column in tiny_synthetic.columns().items():
            dtype = FIELDS[name][2]
            handle.create_dataset(name, data=column, dtype=dtype, chunks=True)
        handle.attrs["schema_version"] = 1
        handle.attrs["class_names"] = json.dumps(tiny_synthetic.class_names)
        handle.attrs["complete"] = True
    assert not h5py.File(path, "r")["landmarks"].fletcher32
    loaded = read_store(path)
    np.testing.assert_array_equal(loaded.landmarks, tiny_synthetic.landmarks)
    assert list(loaded.subject) == list(tiny_synthetic.subject)


def test_new_stores_carry_checksums(tmp_path: Path, tiny_synthetic: LandmarkStore) -> None:
    path = write_store(tmp_path / "new.h5", tiny_synthetic)
    with h5py.File(path, "r") as handle:
        assert all(handle[name].fletcher32 for name in ("landmarks", "label", "image_size"))


def test_rows_that_are_no_face_are_refused_with_their_count(make_store: Callable) -> None:
    landmarks = np.random.default_rng(0).random((6, 478, 3), dtype=np.float32)
    landmarks[1] = 0.0  # what HDF5 returns for rows never written
    landmarks[3] = 0.5  # one value everywhere
    landmarks[4] = [0.5, 0.3, 0.0]  # one point repeated: not one value, still no face
    path = make_store([0, 1, 0, 1, 0, 1], ["a", "b", "c", "d", "e", "f"], landmarks=landmarks)
    with pytest.raises(StoreError) as error:
        read_store(path)
    message = error.value.problem
    assert "dataset 'landmarks' holds 3 of 6 rows" in message and "row 1" in message
    assert error.value.fix


def test_nan_rows_are_left_to_the_data_module(make_store: Callable) -> None:
    """NaN landmarks are dropped and counted where training reads them, not refused here."""
    landmarks = np.random.default_rng(0).random((4, 478, 3), dtype=np.float32)
    landmarks[2, 0, 0] = np.nan
    path = make_store([0, 1, 0, 1], ["a", "b", "c", "d"], landmarks=landmarks)
    assert len(read_store(path)) == 4


def test_an_image_size_of_zero_or_below_is_refused(make_store: Callable) -> None:
    path = make_store([0, 1, 0, 1], ["a", "b", "c", "d"])
    with h5py.File(path, "a") as handle:
        handle["image_size"][2] = [0, 960]
        handle["image_size"][3] = [1280, -4]
    with pytest.raises(StoreError, match=r"dataset 'image_size' is 0 or negative in 2 of 4 rows"):
        read_store(path)


def test_one_class_name_twice_is_refused_on_write_and_read(
    tmp_path: Path, make_store: Callable
) -> None:
    with pytest.raises(StoreError, match=r"name \['neutral'\] more than once"):
        StoreWriter(tmp_path / "w.h5", ["neutral", "neutral"], synthetic=True, provenance={})
    assert not list(tmp_path.glob("w.h5*"))
    path = make_store([0, 1], ["a", "b"])
    with h5py.File(path, "a") as handle:
        handle.attrs["class_names"] = json.dumps(["neutral", "neutral"])
    with pytest.raises(StoreError, match=r"name \['neutral'\] more than once"):
        read_store(path)


def flip_string_byte(path: Path, value: str) -> None:
    """Change the last byte of the one stored copy of `value` (a string in HDF5's heap)."""
    data = bytearray(path.read_bytes())
    assert data.count(value.encode()) == 1
    position = data.index(value.encode()) + len(value) - 1
    data[position] ^= 0x01
    path.write_bytes(bytes(data))


def test_a_flipped_byte_in_a_subject_fails_the_string_checksum(make_store: Callable) -> None:
    """HDF5 has no checksum filter for strings: a changed subject was a new person unnoticed."""
    path = make_store([0, 1, 0, 1], ["person-alpha", "person-bravo", "person-delta", "pers-x"])
    flip_string_byte(path, "person-delta")
    with pytest.raises(StoreError) as error:
        read_store(path)
    assert f"{path} is damaged: dataset 'subject'" in error.value.problem
    assert "checksum" in error.value.problem and "good copy" in (error.value.fix or "")


@pytest.mark.slow
def test_a_flipped_subject_byte_is_an_error_in_the_command_that_reads_it(
    tmp_path: Path, tiny_synthetic: LandmarkStore
) -> None:
    path = write_store(tmp_path / "flipped.h5", tiny_synthetic)
    subject = str(tiny_synthetic.subject[-1])
    data = path.read_bytes()
    first = data.index(subject.encode())
    data = (
        data[:first]
        + subject[:-1].encode()
        + bytes([ord(subject[-1]) ^ 0x01])
        + data[first + len(subject) :]
    )
    path.write_bytes(data)
    done = emotion("emotion.training", "data=store", f"data.path={path}", cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "Traceback" not in done.stderr
    assert f"error: {path} is damaged: dataset 'subject'" in done.stderr and "fix:" in done.stderr


def test_a_lazy_reader_checks_the_strings_too(make_store: Callable) -> None:
    """emotion-extract-merge opens shards lazily (open_store): the same check holds there."""
    from emotion.store.io import open_store

    path = make_store([0, 1], ["person-alpha", "person-bravo"])
    flip_string_byte(path, "person-bravo")
    with pytest.raises(StoreError, match="dataset 'subject' does not match"):
        with open_store(path):
            pass


def test_a_coordinate_past_the_sane_range_is_refused_with_its_count(
    make_store: Callable,
) -> None:
    """A finite 1e30 trained without a word (AUROC 0.0 -> 0.148); NaN/inf stay the data
    module's, and a face the frame cuts (x a little past 0..1) is still a face."""
    landmarks = np.random.default_rng(0).random((5, 478, 3), dtype=np.float32)
    landmarks[0, :, 0] -= 0.3  # a face cut by the frame's left edge
    landmarks[2, 10, 1] = 1e30
    landmarks[4, 0, 2] = -5e3
    landmarks[1, 0, 0] = np.inf
    path = make_store([0, 1, 0, 1, 0], ["a", "b", "c", "d", "e"], landmarks=landmarks)
    with pytest.raises(StoreError) as error:
        read_store(path)
    message = error.value.problem
    assert "dataset 'landmarks' holds 2 of 5 rows" in message and "row 2" in message
    assert "1e+30" in message and error.value.fix
    landmarks[2, 10, 1] = landmarks[4, 0, 2] = 0.5
    path = make_store([0, 1, 0, 1, 0], ["a", "b", "c", "d", "e"], landmarks=landmarks, name="ok.h5")
    assert len(read_store(path)) == 5


# emotion-synth


def synth(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return emotion("emotion.synthetic.app", "--frames", "4", *args, cwd=cwd, timeout=300)


def assert_user_error(done: subprocess.CompletedProcess[str], *phrases: str) -> None:
    assert done.returncode == 2, done.stderr[-3000:]
    assert done.stderr.count("error:") == 1 and done.stderr.count("fix:") == 1, done.stderr
    assert "Traceback" not in done.stderr
    for phrase in phrases:
        assert phrase in done.stderr, done.stderr


@pytest.mark.parametrize("subjects", ["0", "1"])
def test_synth_needs_two_subjects(tmp_path: Path, subjects: str) -> None:
    done = synth("--subjects", subjects, "--output", str(tmp_path / "s.h5"), cwd=tmp_path)
    assert_user_error(done, f"num_subjects={subjects} must be 2 or more", "--subjects")
    assert not (tmp_path / "s.h5").exists()


def test_synth_replaces_an_existing_store_only_with_overwrite(tmp_path: Path) -> None:
    output = tmp_path / "s.h5"
    first = synth("--subjects", "4", "--seed", "1", "--output", str(output), cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    before = output.read_bytes()
    refused = synth("--subjects", "4", "--seed", "2", "--output", str(output), cwd=tmp_path)
    assert_user_error(refused, f"{output} exists", "--overwrite")
    assert output.read_bytes() == before
    replaced = synth(
        "--subjects", "4", "--seed", "2", "--output", str(output), "--overwrite", cwd=tmp_path
    )
    assert replaced.returncode == 0, replaced.stderr[-3000:]
    assert read_store(output).provenance["settings"]["seed"] == 2


def test_synth_to_a_read_only_location_is_an_error(tmp_path: Path) -> None:
    """/sys refuses new files even to root (tests run as root, where chmod does not)."""
    done = synth("--subjects", "4", "--output", "/sys/synthetic.h5", cwd=tmp_path)
    assert_user_error(done, "/sys/synthetic.h5 is not writable", "--output")
