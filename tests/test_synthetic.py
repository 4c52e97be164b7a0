"""The SYNTHETIC default data: deterministic, schema-valid, subject-disjoint, fearful."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from emotion.errors import EmotionError
from emotion.features.preprocessing import normalize
from emotion.features.template import load_template
from emotion.store.classes import BINARY
from emotion.store.io import read_store
from emotion.store.schema import LandmarkStore
from emotion.synthetic.app import main
from emotion.synthetic.face_model import FEAR_ACTIONS, build_face_model
from emotion.synthetic.generate import generate, generate_store
from emotion.synthetic.settings import SyntheticSettings
from tests.commands import emotion

SMALL = {"num_subjects": 12, "frames_per_subject": 10}


@pytest.fixture(scope="module")
def store() -> LandmarkStore:
    return generate(SyntheticSettings(**SMALL, seed=3))


def test_template_loads_without_mediapipe() -> None:
    code = (
        "import sys; sys.modules['mediapipe'] = None; sys.modules['cv2'] = None\n"
        "from emotion.features.template import load_template\n"
        "landmarks, size, provenance = load_template()\n"
        "assert landmarks.shape == (478, 3) and size == (512, 512)\n"
        "assert 'public domain' in provenance['licence']\n"
    )
    root = Path(__file__).resolve().parents[1]
    subprocess.run([sys.executable, "-c", code], check=True, cwd=root)
    landmarks, _, provenance = load_template()
    assert landmarks.dtype == np.float32 and np.isfinite(landmarks).all()
    assert (
        provenance["mediapipe_version"]
        and provenance["extractor"]["name"] == "mediapipe-face-landmarker"
    )


def test_same_seed_same_data_and_other_seed_other_data(store: LandmarkStore) -> None:
    again = generate(SyntheticSettings(**SMALL, seed=3))
    for name, values in store.columns().items():
        np.testing.assert_array_equal(values, again.columns()[name], err_msg=name)
    other = generate(SyntheticSettings(**SMALL, seed=4))
    assert len(other) != len(store) or not np.array_equal(other.landmarks, store.landmarks)


def test_shapes_values_and_names(store: LandmarkStore) -> None:
    rows = len(store)
    assert store.landmarks.shape == (rows, 478, 3) and store.landmarks.dtype == np.float32
    assert np.isfinite(store.landmarks).all()
    xy = store.landmarks[..., :2]
    assert xy.min() > 0.0 and xy.max() < 1.0  # the face lies inside the photo
    assert store.image_size.shape == (rows, 2) and (store.image_size > 0).all()
    assert store.class_names == list(BINARY) and store.synthetic
    assert store.subject[0].startswith("synth_") and store.source[0].startswith("synthetic://")
    assert len(set(store.source)) == rows


def test_splits_are_subject_disjoint_and_hold_both_classes(store: LandmarkStore) -> None:
    train, test = (set(store.subject[store.split == split]) for split in ("train", "test"))
    assert train and test and not train & test
    assert set(store.subject) == train | test
    for split in ("train", "test"):
        assert set(store.label[store.split == split]) == {0, 1}


def test_exact_row_count_when_asked() -> None:
    settings = SyntheticSettings(num_subjects=7, frames_per_subject=9, num_frames=101)
    assert len(generate(settings)) == 101


def test_round_trip_through_the_schema(tmp_path: Path) -> None:
    settings = SyntheticSettings(**SMALL, seed=1)
    path = generate_store(tmp_path / "synthetic.h5", settings)
    written, expected = read_store(path), generate(settings)
    np.testing.assert_array_equal(written.landmarks, expected.landmarks)
    np.testing.assert_array_equal(written.subject, expected.subject)
    assert written.synthetic is True and written.attrs["tool"] == "emotion-synth"
    assert written.provenance["synthetic"] is True
    assert "SYNTHETIC" in written.provenance["notice"]
    assert written.provenance["settings"]["seed"] == 1
    assert written.provenance["template"]["licence"].startswith("NASA")


def test_cli_says_synthetic(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    output = tmp_path / "cli.h5"
    main(["--output", str(output), "--subjects", "4", "--frames", "4", "--seed", "2"])
    assert "SYNTHETIC" in capsys.readouterr().out
    assert read_store(output).synthetic


def test_fear_actions_move_the_right_landmarks() -> None:
    model = build_face_model()
    for name in FEAR_ACTIONS:
        assert np.abs(model.actions[name]).max() > 1.0, name
    assert model.actions["AU1_inner_brow_raise"][107, 1] < -5.0  # up, i.e. smaller y
    assert model.actions["AU26_jaw_drop"][152, 1] > 5.0  # chin down
    assert abs(model.actions["AU26_jaw_drop"][10, 1]) < 0.1  # forehead stays


def test_anxious_faces_have_raised_brows_and_open_mouths() -> None:
    store = generate(SyntheticSettings(num_subjects=30, frames_per_subject=20, seed=5))
    faces = normalize(store.landmarks, store.image_size, method="nose_unit")
    # Ratios to the eye width, so neither the aspect squeeze nor the nose_unit radius matters.
    eye_width = np.linalg.norm(faces[:, 33, :2] - faces[:, 263, :2], axis=1)
    inner_brow_height = faces[:, [133, 362], 1].mean(1) - faces[:, [107, 336], 1].mean(1)
    mouth_opening = faces[:, 14, 1] - faces[:, 13, 1]
    mouth_width = np.linalg.norm(faces[:, 291, :2] - faces[:, 61, :2], axis=1)
    anxious, neutral = store.label == 1, store.label == 0
    for measure in (inner_brow_height, mouth_opening, mouth_width):
        ratio = measure / eye_width
        assert ratio[anxious].mean() > ratio[neutral].mean()


@pytest.mark.parametrize(
    ("settings", "key"),
    [({"num_subjects": 0}, "num_subjects=0"), ({"num_subjects": 1}, "num_subjects=1")]
    + [({"frames_per_subject": 1}, "frames_per_subject=1"), ({"num_frames": 3}, "num_frames=3")]
    + [({"anxious_fraction": 1.0}, "anxious_fraction=1.0")],
)
def test_bad_settings_are_a_user_error_naming_the_setting(settings: dict, key: str) -> None:
    with pytest.raises(EmotionError, match=key):
        SyntheticSettings(**settings)


def test_emotion_synth_refuses_zero_subjects_with_exit_2(tmp_path: Path) -> None:
    done = emotion("emotion.synthetic.app", "--subjects", "0", "--output", "s.h5", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert "error: num_subjects=0" in done.stderr and "fix: emotion-synth --subjects" in done.stderr
    assert "Traceback" not in done.stderr and not (tmp_path / "s.h5").exists()
