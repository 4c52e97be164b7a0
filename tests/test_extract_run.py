"""End-to-end extraction on a tiny AI Hub-style tree (real FaceMesh on the astronaut photo)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from emotion.errors import EmotionError
from emotion.extract import pipeline
from emotion.extract.app import run
from emotion.extract.merge import merge
from emotion.extract.pipeline import extract
from emotion.extract.settings import ExtractSettings, report_path
from emotion.store.files import partial_path_for
from emotion.store.io import read_store
from emotion.store.schema import LandmarkStore
from tests.extract_tree import (
    PERSON_A,
    PERSON_B,
    PERSON_C,
    PERSON_D,
    InterruptingRunner,
    Tree,
    build_aihub_tree,
    extract_config,
)

COLUMNS = ("landmarks", "label", "subject", "split", "source", "image_size")


def settings(tree_root: Path, output: Path, *overrides: str) -> ExtractSettings:
    return ExtractSettings.from_config(extract_config(tree_root, output, *overrides))


def assert_same_rows(a: LandmarkStore, b: LandmarkStore) -> None:
    for name in COLUMNS:
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Tree:
    return build_aihub_tree(tmp_path_factory.mktemp("aihub"))


@pytest.fixture(scope="module")
def baseline(tree: Tree, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    output = tmp_path_factory.mktemp("out") / "aihub.h5"
    report = extract(settings(tree.root, output, "chunk_tasks=2"))
    return output, report


def test_store_labels_subjects_splits_and_shape(baseline: tuple[Path, dict[str, Any]]) -> None:
    output, _ = baseline
    store = read_store(output)
    assert store.class_names == ["neutral", "anxious"]
    assert store.landmarks.shape == (9, 478, 3) and store.landmarks.dtype == np.float32
    names = [store.class_names[i] for i in store.label]
    # Archives in name order (불안 sorts before 중립), members in name order within each.
    assert names == ["anxious"] * 3 + ["neutral"] * 3 + ["anxious"] + ["neutral"] * 2
    assert list(store.split) == ["train"] * 6 + ["test"] * 3
    assert list(store.subject[:6]) == [PERSON_A, PERSON_A, PERSON_C, PERSON_A, PERSON_A, PERSON_B]
    assert set(store.subject[store.split == "test"]) == {PERSON_A, PERSON_D}
    assert all(len(s.split("::")[0]) for s in store.source)
    assert "Validation/[원천]EMOIMG_불안_VALID/" in store.source[6]  # the unpacked folder
    assert 0.2 < store.landmarks[..., 0].mean() < 0.8


def test_exif_rotated_photo_is_upright(tree: Tree, baseline: tuple[Path, dict[str, Any]]) -> None:
    store = read_store(baseline[0])
    sources = list(store.source)
    upright = sources.index(tree.upright_member)
    rotated = sources.index(tree.rotated_member)
    assert tuple(store.image_size[rotated]) == (400, 512)
    assert tuple(store.image_size[upright]) == (400, 512)
    difference = np.abs(store.landmarks[rotated, :, :2] - store.landmarks[upright, :, :2])
    assert difference.mean() < 0.01


def test_report_accounts_for_every_member(baseline: tuple[Path, dict[str, Any]]) -> None:
    output, report = baseline
    assert json.loads(report_path(output).read_text(encoding="utf-8"))["rows"] == 9
    neutral = report["archives"]["Training/[원천]EMOIMG_중립_TRAIN_01.zip"]
    assert neutral["members"] == 6 and neutral["non_images"] == 1 and neutral["seen"] == 5
    assert (neutral["sampled"], neutral["faces"], neutral["no_face"], neutral["undecodable"]) == (
        5,
        3,
        1,
        1,
    )
    problems = report["problems"]
    assert problems["non_image"]["examples"] == [
        "Training/[원천]EMOIMG_중립_TRAIN_01.zip::Thumbs.db"
    ]
    assert problems["undecodable"]["count"] == 1 and problems["no_face"]["count"] == 1
    assert problems["broken_zip"]["count"] == 1
    assert problems["empty_archive"]["examples"] == ["Training/[원천]EMOIMG_슬픔_TRAIN_01.zip"]
    assert problems["no_emotion_in_name"]["examples"] == ["Training/[원천]EMOIMG_TRAIN_03.zip"]
    assert problems["emotion_not_in_class_set"]["count"] == 1
    assert report["rows_per_class_and_split"] == {
        "neutral": {"train": 3, "test": 2},
        "anxious": {"train": 3, "test": 1},
    }
    people = report["people"]
    assert people["per_class_and_split"]["neutral"] == {"train": 2, "test": 2}
    assert people["in_both_train_and_test"] == 1 and people["in_both_examples"] == [PERSON_A]
    assert report["totals"]["members"] == 6 + 3 + 1 + 1 + 0 + 2 + 1


def test_seven_classes_keep_other_emotions(tree: Tree, tmp_path: Path) -> None:
    store = read_store(extract(settings(tree.root, tmp_path / "s.h5", "classes=seven"))["store"])
    assert store.class_names[2] == "happy"
    assert (store.label == 2).sum() == 1 and len(store) == 10


def test_sampling_cap(tree: Tree, tmp_path: Path) -> None:
    report = extract(settings(tree.root, tmp_path / "c.h5", "max_per_archive=2"))
    for archive in (
        "Training/[원천]EMOIMG_중립_TRAIN_01.zip",
        "Training/[원천]EMOIMG_불안_TRAIN_01.zip",
    ):
        assert report["archives"][archive]["sampled"] == 2
    store = read_store(tmp_path / "c.h5")
    train_neutral = store.source[(store.split == "train") & (store.label == 0)]
    assert len(train_neutral) == 1  # uniform picks the first (a face) and last (no face) photo
    again = extract(settings(tree.root, tmp_path / "r1.h5", "max_per_archive=2", "sampling=random"))
    twice = extract(settings(tree.root, tmp_path / "r2.h5", "max_per_archive=2", "sampling=random"))
    assert_same_rows(read_store(again["store"]), read_store(twice["store"]))


def test_annotator_votes(tree: Tree, tmp_path: Path) -> None:
    report = extract(settings(tree.root, tmp_path / "v.h5", "labels.source=annotators"))
    store = read_store(tmp_path / "v.h5")
    assert len(store) == 1 and store.class_names[store.label[0]] == "anxious"
    assert report["problems"]["no_majority"]["count"] == 1
    votes = report["folder_vs_vote"]["anxious/train"]
    assert votes["vote_agrees"] == 1 and votes["vote_differs"] == 1
    assert votes["voted_embarrassed"] == 1 and votes["no_majority"] == 1


def test_resume_after_interruption_matches_a_clean_run(
    tree: Tree, baseline: tuple[Path, dict[str, Any]], tmp_path: Path, monkeypatch: Any
) -> None:
    output = tmp_path / "resumed.h5"
    monkeypatch.setattr(pipeline, "FaceMeshRunner", InterruptingRunner)
    monkeypatch.setattr(InterruptingRunner, "calls", 0)
    with pytest.raises(KeyboardInterrupt):
        extract(settings(tree.root, output, "chunk_tasks=2"))
    monkeypatch.undo()
    partial = partial_path_for(output)
    assert not output.exists() and partial.exists()
    with pytest.raises(EmotionError, match="incomplete"):
        read_store(partial)
    with h5py.File(partial, "a") as handle:
        assert handle.attrs["extract_tasks_done"] == 4
        # A crash between writing rows and checkpointing them leaves extra rows: resume
        # must drop them rather than keep duplicates.
        for name in COLUMNS:
            handle[name].resize(handle[name].shape[0] + 1, axis=0)
    report = extract(settings(tree.root, output, "chunk_tasks=2"))
    assert report["run"]["tasks_resumed"] == 4
    assert_same_rows(read_store(output), read_store(baseline[0]))
    assert report["totals"] == baseline[1]["totals"]
    assert report["problems"] == baseline[1]["problems"]


def test_shards_merge_into_the_single_run(
    tree: Tree, baseline: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    output = tmp_path / "sharded.h5"
    for index in range(3):
        extract(settings(tree.root, output, f"shard.index={index}", "shard.count=3"))
    with pytest.raises(EmotionError, match="missing"):
        merge(output, [tmp_path / "sharded.shard-0-of-3.h5", tmp_path / "sharded.shard-2-of-3.h5"])
    with pytest.raises(EmotionError, match="more than once"):
        merge(output, [tmp_path / f"sharded.shard-{i}-of-3.h5" for i in (0, 1, 1, 2)])
    report = merge(output)
    assert_same_rows(read_store(output), read_store(baseline[0]))
    assert report["totals"] == baseline[1]["totals"]


def test_rerun_of_a_finished_output_does_nothing(
    tree: Tree, baseline: tuple[Path, dict[str, Any]]
) -> None:
    output, _ = baseline
    before = output.stat().st_mtime_ns
    extract(settings(tree.root, output, "chunk_tasks=2"))
    assert output.stat().st_mtime_ns == before
    with pytest.raises(EmotionError, match="other data or settings"):
        extract(settings(tree.root, output, "max_per_archive=1"))


def test_fail_at_once_errors(tmp_path: Path, tree: Tree, capsys: Any) -> None:
    with pytest.raises(SystemExit) as exit_info:
        run(extract_config(tmp_path / "nowhere", tmp_path / "x.h5"))
    assert exit_info.value.code == 2
    message = capsys.readouterr().err
    assert "does not exist" in message and "fix:" in message
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("no photos")
    with pytest.raises(EmotionError, match="neither the AI Hub layout"):
        extract(settings(tmp_path / "notes", tmp_path / "x.h5"))
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(EmotionError, match="not writable"):
        extract(settings(tree.root, blocker / "sub" / "x.h5"))


def test_plain_folders_with_class_regex(tmp_path: Path) -> None:
    from tests.extract_tree import astronaut_bytes

    root = tmp_path / "photos"
    (root / "train").mkdir(parents=True)
    (root / "test").mkdir()
    for split, person in (("train", "p1"), ("test", "p2")):
        (root / split / f"{person}_neutral_1.jpg").write_bytes(astronaut_bytes())
        (root / split / f"{person}_anxious_2.jpg").write_bytes(astronaut_bytes())
        (root / split / f"{person}_happy_3.jpg").write_bytes(astronaut_bytes())
    report = extract(settings(root, tmp_path / "f.h5", "source.class_regex='^[^_]+_([a-z]+)_'"))
    store = read_store(tmp_path / "f.h5")
    assert len(store) == 4 and report["rows_per_class_and_split"]["anxious"] == {
        "train": 1,
        "test": 1,
    }
    assert set(store.subject) == {"p1", "p2"}


@pytest.mark.slow
def test_two_workers_match_one(
    tree: Tree, baseline: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    extract(settings(tree.root, tmp_path / "w2.h5", "workers=2", "chunk_tasks=2"))
    assert_same_rows(read_store(tmp_path / "w2.h5"), read_store(baseline[0]))


KILL_AT_SCRIPT = """
import os, signal, sys
from tests.extract_tree import extract_config
from emotion.extract import pipeline
from emotion.extract.settings import ExtractSettings

calls = 0
original = pipeline.FaceMeshRunner.run


def run_then_die(self, task):
    global calls
    calls += 1
    if calls == 6:
        os.kill(os.getpid(), signal.SIGKILL)  # no cleanup, no last flush
    return original(self, task)


pipeline.FaceMeshRunner.run = run_then_die
cfg = extract_config(sys.argv[1], sys.argv[2], "chunk_tasks=2")
pipeline.extract(ExtractSettings.from_config(cfg))
"""


@pytest.mark.slow
def test_resume_after_kill_9(
    tree: Tree, baseline: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    import os
    import subprocess
    import sys

    output = tmp_path / "killed.h5"
    tests_dir = Path(__file__).parent
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tests_dir.parent), str(tests_dir)])}
    killed = subprocess.run(
        [sys.executable, "-c", KILL_AT_SCRIPT, str(tree.root), str(output)],
        env=env,
        capture_output=True,
        timeout=120,
    )
    assert killed.returncode == -9, killed.stderr.decode()[-2000:]
    assert partial_path_for(output).exists() and not output.exists()
    report = extract(settings(tree.root, output, "chunk_tasks=2"))
    assert report["run"]["tasks_resumed"] == 4
    assert_same_rows(read_store(output), read_store(baseline[0]))


def test_video_frames_at_a_stride(tmp_path: Path) -> None:
    import cv2

    from tests.extract_tree import FIXTURE

    folder = tmp_path / "clips" / "neutral"
    folder.mkdir(parents=True)
    frame = cv2.imread(str(FIXTURE))
    writer = cv2.VideoWriter(
        str(folder / "p1_clip.mp4"), cv2.VideoWriter_fourcc(*"mp4v"), 10, (512, 512)
    )
    for _ in range(25):
        writer.write(frame)
    writer.release()
    report = extract(settings(tmp_path / "clips", tmp_path / "v.h5", "source.video_stride=10"))
    store = read_store(tmp_path / "v.h5")
    assert list(store.source) == [f"neutral/p1_clip.mp4#frame={n}" for n in (0, 10, 20)]
    assert report["totals"]["video_frames"] == 3 and set(store.subject) == {"p1"}


def test_an_unreadable_folder_is_counted_and_the_run_goes_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tests run as root, where chmod cannot hide a folder; the OS error is simulated."""
    import os

    from emotion.extract import sources
    from tests.extract_tree import astronaut_bytes

    root = tmp_path / "photos"
    for folder in ("neutral", "anxious", "locked/neutral"):
        (root / folder).mkdir(parents=True)
        (root / folder / f"p{len(folder)}_1.jpg").write_bytes(astronaut_bytes())
    locked = str(root / "locked")
    real_walk = os.walk

    def walk(top: Any, topdown: bool = True, onerror: Any = None, followlinks: bool = False):
        for directory, subdirs, files in real_walk(top, topdown, onerror, followlinks):
            if directory == locked:
                if onerror is not None:
                    onerror(PermissionError(13, "Permission denied", directory))
                subdirs[:] = []
                continue
            yield directory, subdirs, files

    monkeypatch.setattr(sources.os, "walk", walk)
    report = extract(settings(root, tmp_path / "f.h5"))
    unreadable = report["problems"]["unreadable_folder"]
    assert unreadable["count"] == 1 and locked in unreadable["examples"][0]
    assert report["rows"] == 2  # neutral/ and anxious/ were still extracted


def test_stores_of_another_extractor_are_named_on_rerun_and_never_merged(
    tree: Tree, baseline: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """A store (or shard) whose faces came from the legacy FaceMesh graph is not taken as up
    to date, nor merged with FaceLandmarker's: the two landmark sets are not interchangeable."""
    import json
    import shutil

    import h5py

    from emotion.store.schema import LEGACY_EXTRACTOR

    old = tmp_path / "old.h5"
    shutil.copy(baseline[0], old)
    with h5py.File(old, "r+") as handle:  # as an older version wrote it
        handle.attrs["extractor"] = json.dumps(LEGACY_EXTRACTOR)
        handle.attrs["extract_fingerprint"] = "0" * 64
    with pytest.raises(EmotionError, match="older landmark extractor") as raised:
        extract(settings(tree.root, old, "chunk_tasks=2"))
    assert "overwrite=true" in raised.value.fix
    output = tmp_path / "sharded.h5"
    for index in range(2):
        extract(settings(tree.root, output, f"shard.index={index}", "shard.count=2"))
    with h5py.File(tmp_path / "sharded.shard-1-of-2.h5", "r+") as handle:
        handle.attrs["extractor"] = json.dumps(LEGACY_EXTRACTOR)
    with pytest.raises(EmotionError, match="not interchangeable"):
        merge(output)
    assert not output.exists()


def test_an_output_in_a_folder_not_there_yet_is_made(tree: Tree, tmp_path: Path) -> None:
    """`output=data/x.h5` from an empty folder (a fresh install): the folder is made, as the
    command's own check promised, instead of `cannot open the lock file`."""
    output = tmp_path / "new" / "deeper" / "x.h5"
    report = extract(settings(tree.root, output))
    assert output.is_file() and report["rows"] > 0
