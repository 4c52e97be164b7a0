"""The field's data sets load without renaming: CK+, FER2013, JAFFE and KDEF-style trees.

Trees are generated from the astronaut fixture (tests/extract_tree.py); real FaceMesh runs on
a handful of photos per test. The options are the command lines docs/extraction.md shows,
split as bash splits them.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from emotion.errors import EmotionError
from emotion.extract.pipeline import extract
from emotion.extract.plan import make_plan
from emotion.extract.settings import ExtractSettings
from emotion.store.classes import BINARY, CANONICAL_ORDER, SEVEN, emotion_in_name
from emotion.store.io import read_store
from tests.extract_tree import (
    CK_PLUS,
    FER,
    JAFFE,
    build_ck_plus_tree,
    build_fer_tree,
    build_jaffe_tree,
    extract_config,
)

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs" / "extraction.md"
CK_PLUS_FOUND = [
    "neutral",
    "anxious",
    "happy",
    "angry",
    "sad",
    "surprised",
    "disgusted",
    "contempt",
]


def settings(root: Path, output: Path, *overrides: str) -> ExtractSettings:
    return ExtractSettings.from_config(extract_config(root, output, *overrides))


def documented(data_set: str) -> str:
    """The options of docs/extraction.md's command for `/data/<data_set>`, after `output=`."""
    prefix = f"emotion-extract source.root=/data/{data_set} output="
    for line in DOCS.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith(prefix):
            return line.strip().split(" ", 3)[3]
    raise AssertionError(f"docs/extraction.md has no command for /data/{data_set}")


def rows_per_class(output: Path) -> dict[str, int]:
    store = read_store(output)
    return dict(Counter(store.class_names[label] for label in store.label))


@pytest.mark.parametrize(
    ("name", "emotion"),
    [
        ("anger", "angry"),
        ("angry", "angry"),
        ("contempt", "contempt"),
        ("disgust", "disgusted"),
        ("disgusted", "disgusted"),
        ("fear", "anxious"),
        ("fearful", "anxious"),
        ("afraid", "anxious"),
        ("scared", "anxious"),
        ("happy", "happy"),
        ("happiness", "happy"),
        ("sad", "sad"),
        ("sadness", "sad"),
        ("surprise", "surprised"),
        ("surprised", "surprised"),
        ("Neutral01", "neutral"),
        ("neutral_faces", "neutral"),
        ("[원천]EMOIMG_불안_TRAIN_01.zip", "anxious"),
        ("[원천]EMOIMG_중립_VALID", "neutral"),
        ("danger", None),  # a word that merely contains `anger`
        ("S005_001_00000001.png", None),
        ("happy_sad", None),  # two emotions: none
        ("FE", None),
    ],
)
def test_english_names_match_word_starts(name: str, emotion: str | None) -> None:
    assert emotion_in_name(name) == emotion


def test_class_map_comes_first_and_ignores_case() -> None:
    class_map = {"fe": "anxious", "danger": "angry"}
    assert emotion_in_name("FE", class_map) == "anxious"
    assert emotion_in_name("Danger", class_map) == "angry"
    assert emotion_in_name("FEAR", class_map) == "anxious"  # keywords still apply
    assert BINARY == ("neutral", "anxious") and SEVEN[:2] == BINARY
    assert CANONICAL_ORDER[: len(SEVEN)] == SEVEN


@pytest.mark.parametrize(
    ("classes", "message"),
    [
        ("[]", "is empty"),
        ("[neutral,happy,neutral]", "repeats"),
        ("eight", "is not allowed"),
    ],
)
def test_class_lists_are_checked(tmp_path: Path, classes: str, message: str) -> None:
    with pytest.raises(EmotionError, match=message):
        settings(tmp_path, tmp_path / "x.h5", f"classes={classes}")


def test_class_map_keys_differing_only_in_case_must_agree(tmp_path: Path) -> None:
    with pytest.raises(EmotionError, match="both"):
        settings(tmp_path, tmp_path / "x.h5", "source.class_map={FE:anxious,fe:sad}")


def test_ck_plus_binary_and_explicit_lists_plan(tmp_path: Path) -> None:
    """No FaceMesh: which photos each class choice keeps, and their labels."""
    root = build_ck_plus_tree(tmp_path / "ck")
    binary = make_plan(settings(root, tmp_path / "b.h5"))
    assert binary.class_names == ["neutral", "anxious"]
    assert Counter(task.emotion for task in binary.tasks) == {"neutral": 2, "anxious": 1}
    assert binary.inventory.problems["emotion_not_in_class_set"]["count"] == 6
    chosen = make_plan(settings(root, tmp_path / "l.h5", "classes=[happy,contempt,neutral]"))
    assert chosen.class_names == ["happy", "contempt", "neutral"]
    assert sorted((task.emotion, task.label) for task in chosen.tasks) == [
        ("contempt", 1),
        ("happy", 0),
        ("neutral", 2),
        ("neutral", 2),
    ]
    typo = make_plan(settings(root, tmp_path / "t.h5", "classes=[neutral,fearful]"))
    assert typo.inventory.problems["class_without_photos"]["examples"] == ["fearful"]


def test_fingerprint_names_the_class_choice(tmp_path: Path) -> None:
    base = settings(tmp_path, tmp_path / "x.h5", "classes=found")
    mapped = settings(tmp_path, tmp_path / "x.h5", "classes=found", "source.class_map={FE:sad}")
    listed = settings(tmp_path, tmp_path / "x.h5", "classes=[neutral,anxious]")
    assert mapped.result_settings()["class_map"] == {"fe": "sad"}
    prints = {
        base.fingerprint(["a"], ["neutral"]),
        mapped.fingerprint(["a"], ["neutral"]),
        listed.fingerprint(["a"], ["neutral"]),
        base.fingerprint(["a"], ["sad"]),
    }
    assert len(prints) == 4


def test_ck_plus_every_class_found(tmp_path: Path) -> None:
    root = build_ck_plus_tree(tmp_path / "ck")
    assert documented("ckplus") == "classes=found"
    report = extract(settings(root, tmp_path / "ck.h5", *shlex.split(documented("ckplus"))))
    store = read_store(tmp_path / "ck.h5")
    assert store.class_names == CK_PLUS_FOUND
    folder_of = {"angry": "anger", "anxious": "fear", "sad": "sadness", "surprised": "surprise"}
    folder_of |= {"disgusted": "disgust"}
    expected = {name: len(CK_PLUS[folder_of.get(name, name)]) for name in CK_PLUS_FOUND}
    assert rows_per_class(tmp_path / "ck.h5") == expected
    assert set(store.subject) == {"S005", "S010", "S011", "S014", "S037", "S138"}
    by_source = dict(zip(store.source, store.subject, strict=True))
    assert by_source["contempt/S138_008_00000008.png"] == "S138"
    assert set(store.split) == {"train"} and report["problems"].keys() == set()


def test_fer_folders_with_one_subject_per_photo(tmp_path: Path) -> None:
    root = build_fer_tree(tmp_path / "fer")
    overrides = shlex.split(documented("fer2013"))
    assert overrides == ["classes=found", "subject.match_on=path", "subject.regex='^(.*)$'"]
    report = extract(settings(root, tmp_path / "fer.h5", *overrides))
    store = read_store(tmp_path / "fer.h5")
    assert store.class_names == [
        "neutral",
        "anxious",
        "happy",
        "angry",
        "sad",
        "surprised",
        "disgusted",
    ]
    assert report["rows_per_class_and_split"]["happy"] == {"train": 1, "test": 1}
    assert report["rows_per_class_and_split"]["angry"] == {"train": 2, "test": 0}
    photos = [
        f"{split}/{emotion}/{name}"
        for split, folders in FER.items()
        for emotion, names in folders.items()
        for name in names
    ]
    assert sorted(store.subject) == sorted(photos)  # `im0.jpg` repeats; its path does not
    assert list(store.subject) == list(store.source)
    split_of = dict(zip(store.subject, store.split, strict=True))
    assert split_of["test/sad/im0.jpg"] == "test" and split_of["train/sad/im0.jpg"] == "train"


def test_jaffe_codes_through_the_command_line(tmp_path: Path) -> None:
    """The documented JAFFE command, run by bash as a user runs it (brace expansion and quote
    removal included), through the real CLI."""
    root = build_jaffe_tree(tmp_path / "jaffe")
    output = tmp_path / "jaffe.h5"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    command = f"{shlex.quote(sys.executable)} -m emotion.extract.app"
    command += f" source.root={shlex.quote(str(root))} output={shlex.quote(str(output))}"
    command += f" progress=none {documented('jaffe')}"
    done = subprocess.run(
        ["bash", "-c", command], cwd=tmp_path, env=env, capture_output=True, timeout=300
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    store = read_store(output)
    assert store.class_names == CK_PLUS_FOUND[:-1]  # all but contempt
    assert rows_per_class(output) == dict.fromkeys(store.class_names, 1)
    subjects = dict(zip(store.source, store.subject, strict=True))
    assert subjects == {name: name[:2] for name in JAFFE}
    label_of = dict(zip(store.source, store.label, strict=True))
    assert store.class_names[label_of["KA.FE1.45.tiff"]] == "anxious"
    assert tuple(store.image_size[0]) == (160, 160)  # grayscale TIFF, decoded as RGB


def test_kdef_codes_plan(tmp_path: Path) -> None:
    """KDEF: AF01AFS.JPG is session A, female 01, afraid, straight; no FaceMesh needed."""
    root = tmp_path / "KDEF"
    names = {"AF01": ["AF01AFS.JPG", "AF01HAS.JPG"], "BF01": ["BF01NES.JPG"]}
    names["AM02"] = ["AM02SAHL.JPG", "AM02XXS.JPG"]
    for folder, files in names.items():
        (root / folder).mkdir(parents=True)
        for name in files:
            (root / folder / name).write_bytes(b"not decoded here")
    plan = make_plan(settings(root, tmp_path / "k.h5", *shlex.split(documented("KDEF"))))
    assert plan.class_names == ["neutral", "anxious", "happy", "sad"]
    assert {(task.source, task.emotion, task.subject) for task in plan.tasks} == {
        ("AF01/AF01AFS.JPG", "anxious", "F01"),
        ("AF01/AF01HAS.JPG", "happy", "F01"),
        ("BF01/BF01NES.JPG", "neutral", "F01"),
        ("AM02/AM02SAHL.JPG", "sad", "M02"),
    }
    assert plan.inventory.problems["no_emotion_in_name"]["examples"] == ["AM02/AM02XXS.JPG"]
