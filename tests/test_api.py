"""The Python API (`emotion.load`, `Model.predict`, `Model.enroll`, `emotion.load_store`) used
as a notebook uses it, held to `emotion-predict`'s numbers for the same photos: the CLI runs
as a subprocess, its CSV is the reference."""

from __future__ import annotations

import ast
import csv
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from tests.commands import ROOT, emotion

pytest.importorskip("mediapipe", reason="the Python API's photos need the extract extra")

from emotion.errors import EmotionError  # noqa: E402
from emotion.facemesh.decode import decode_upright  # noqa: E402

FACE = ROOT / "tests" / "fixtures" / "astronaut.jpg"
README_EXAMPLE = """\
import emotion
m = emotion.load({run!r})
print(m.predict('tests/fixtures/astronaut.jpg'))
"""


def cli_rows(run: Path, photos: list[Path], output: Path, *extra: str) -> dict[str, dict]:
    """emotion-predict's rows for `photos`, by source."""
    done = emotion(
        "emotion.predict", str(run), *map(str, photos), "-o", str(output), *extra, cwd=ROOT
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return {row["source"]: row for row in csv.DictReader(output.open())}


def assert_same(probabilities: dict[str, float], row: dict[str, str]) -> None:
    assert probabilities, f"no probabilities where emotion-predict has {row}"
    for name, value in probabilities.items():
        assert value == pytest.approx(float(row[f"p_{name}"]), abs=1e-6), name


@pytest.fixture(scope="module")
def people(photo_store: tuple[Path, Path]) -> list[Path]:
    return sorted(photo_store[0].rglob("*.jpg"))


@pytest.fixture(scope="module")
def plain_rows(
    plain_run: Path, people: list[Path], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, dict]:
    output = tmp_path_factory.mktemp("api-plain") / "p.csv"
    return cli_rows(plain_run, [FACE, *people[:3]], output)


def test_import_emotion_loads_neither_torch_nor_mediapipe_until_the_api_is_used() -> None:
    code = textwrap.dedent(
        """
        import sys
        import emotion
        heavy = [name for name in ("torch", "mediapipe", "cv2") if name in sys.modules]
        print("after import:", heavy)
        print("load:", callable(emotion.load), callable(emotion.load_store))
        print("after first use:", "torch" in sys.modules)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.splitlines() == [
        "after import: []",
        "load: True True",
        "after first use: True",
    ]


def test_the_readme_example_runs_as_written_and_prints_emotion_predicts_numbers(
    plain_run: Path, plain_rows: dict[str, dict], tmp_path: Path
) -> None:
    script = tmp_path / "notebook.py"
    script.write_text(README_EXAMPLE.format(run=str(plain_run)))
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr[-2000:]
    printed = done.stdout.strip()
    assert printed.startswith("Prediction(") and "label=" in printed
    found = re.search(r"probabilities=(\{[^}]*\})", printed)
    assert found, printed
    assert_same(ast.literal_eval(found.group(1)), plain_rows[str(FACE)])
    assert "faces=1" in printed and "image_size=(512, 512)" in printed


def test_paths_bytes_arrays_and_lists_give_emotion_predicts_probabilities(
    plain_run: Path, people: list[Path], plain_rows: dict[str, dict]
) -> None:
    import emotion

    photos = [FACE, *people[:3]]
    with emotion.load(plain_run) as model:
        assert model.baseline == "none" and model.class_names == ["neutral", "anxious"]
        assert model.trained_on_synthetic is False and str(plain_run) in model.description
        listed = model.predict([str(photo) for photo in photos])
        assert isinstance(listed, list) and len(listed) == len(photos)
        for photo, prediction in zip(photos, listed, strict=True):
            row = plain_rows[str(photo)]
            assert_same(prediction.probabilities, row)
            assert prediction.label == row["label"] and prediction.source == str(photo)
            assert prediction.score == prediction.probabilities["anxious"]
            assert prediction.landmarks.shape == (478, 3) and prediction.pose.shape == (4, 4)
            assert prediction.blendshapes.shape == (52,)
            data = photo.read_bytes()
            assert_same(model.predict(data).probabilities, row)
            # emotion-predict decodes these at full size (short side <= 2 x 480): same pixels.
            pixels, size = decode_upright(data, 1)
            from_array = model.predict(pixels)
            assert from_array.image_size == size == prediction.image_size
            assert_same(from_array.probabilities, row)
            assert_same(model.predict(Path(photo)).probabilities, row)


def test_a_face_found_elsewhere_is_scored_as_its_photo_and_what_it_lacks_is_named(
    plain_run: Path, plain_rows: dict[str, dict]
) -> None:
    import emotion

    with emotion.load(plain_run) as model:
        photo = model.predict(FACE)
        given = model.predict(
            landmarks=photo.landmarks.tolist(),
            image_size=photo.image_size,
            blendshapes=photo.blendshapes,
            pose=photo.pose,
        )
        assert_same(given.probabilities, plain_rows[str(FACE)])
        assert given.landmarks.shape == (478, 3) and given.image_size == (512, 512)
        with pytest.raises(EmotionError, match="image_size"):
            model.predict(landmarks=photo.landmarks, image_size=(0, 512))
        assert model.trained.preprocessing.uses_image_size  # the default: aspect correction
        with pytest.raises(EmotionError) as lacking:
            model.predict(landmarks=photo.landmarks)
        assert "image_size" in lacking.value.problem and "image_size=" in lacking.value.fix
        with pytest.raises(EmotionError) as wrong:
            model.predict(landmarks=photo.landmarks[:468], image_size=(512, 512))
        assert "478" in wrong.value.problem and wrong.value.fix


def test_no_face_is_an_answer_and_what_cannot_be_read_is_an_error(
    plain_run: Path, tmp_path: Path
) -> None:
    import emotion

    blank = tmp_path / "blank.png"
    from PIL import Image

    Image.new("RGB", (640, 480), (128, 128, 128)).save(blank)
    with emotion.load(plain_run) as model:
        nobody = model.predict(blank)
        assert (nobody.faces, nobody.probabilities, nobody.label, nobody.landmarks) == (
            0,
            {},
            None,
            None,
        )
        for bad, named in (
            (b"not an image", "the image bytes"),
            (np.zeros((4, 4), np.uint8), "RGB uint8"),
            (np.zeros((8, 8, 3), np.float32), "RGB uint8"),
            (tmp_path / "missing.jpg", "does not exist"),
            (tmp_path, "is a folder"),
            (3.5, "float"),
        ):
            with pytest.raises(EmotionError) as refused:
                model.predict([FACE, bad])
            assert named in refused.value.problem and refused.value.fix
    assert model._runner is None  # closed by `with`; a later predict makes a new landmarker


def test_enroll_gives_emotion_predict_enrolls_numbers_and_forget_asks_for_it_again(
    enrolled_run: Path, people: list[Path], tmp_path: Path
) -> None:
    import emotion

    rest, *photos = people[:4]
    rows = cli_rows(enrolled_run, photos, tmp_path / "e.csv", "--enroll", str(rest))
    with emotion.load(enrolled_run) as model:
        assert model.baseline == "enrolled" and not model.enrolled
        with pytest.raises(EmotionError) as refused:
            model.predict(photos[0])
        assert "data.baseline=enrolled" in refused.value.problem
        assert "model.enroll(" in refused.value.fix
        model.enroll([rest])
        predictions = model.predict([str(photo) for photo in photos])
        for photo, prediction in zip(photos, predictions, strict=True):
            assert_same(prediction.probabilities, rows[str(photo)])
            assert prediction.reference == rows[str(photo)]["reference"] == f"enroll: {rest}"
        # The rest face from its decoded pixels is the same rest face.
        model.enroll(decode_upright(rest.read_bytes(), 1)[0])
        assert_same(model.predict(photos[0]).probabilities, rows[str(photos[0])])
        model.forget()
        with pytest.raises(EmotionError, match="reference face"):
            model.predict(photos[0])


def test_enrolling_a_photo_without_a_face_or_a_model_without_a_baseline_is_refused(
    enrolled_run: Path, plain_run: Path, people: list[Path], tmp_path: Path
) -> None:
    from PIL import Image

    import emotion

    blank = tmp_path / "blank.jpg"
    Image.new("RGB", (640, 480), (90, 90, 90)).save(blank)
    with emotion.load(enrolled_run) as model:
        with pytest.raises(EmotionError) as faceless:
            model.enroll([people[0], blank])
        assert str(blank) in faceless.value.problem and str(people[0]) not in faceless.value.problem
        assert not model.enrolled  # nothing half-made
    with emotion.load(plain_run) as plain, pytest.raises(EmotionError) as alone:
        plain.enroll([people[0]])
    assert "data.baseline=none" in alone.value.problem and alone.value.fix


def test_a_path_that_is_no_model_is_an_error_with_a_fix(tmp_path: Path) -> None:
    import emotion

    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.ckpt").write_text("not a checkpoint\n")
    for path in (tmp_path / "nothing", tmp_path / "empty", tmp_path / "notes.ckpt"):
        with pytest.raises(EmotionError) as refused:
            emotion.load(path)
        assert refused.value.problem and refused.value.fix, path


def test_load_store_gives_the_arrays_and_a_table_with_or_without_pandas(
    photo_store: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import emotion

    store = emotion.load_store(photo_store[1])
    assert len(store) == 16 and store.landmarks.shape == (16, 478, 3)
    assert store.blendshapes.shape == (16, 52) and store.class_names == ["neutral", "anxious"]
    assert store.labels == [store.class_names[index] for index in store.label]
    frame = store.frame()
    assert list(frame.columns)[:4] == ["source", "subject", "split", "label"]
    assert len(frame) == 16 and frame["label"].tolist() == store.labels
    assert set(frame["split"]) == {"train", "test"}
    monkeypatch.setitem(sys.modules, "pandas", None)  # pandas is an optional dependency
    columns = store.frame()
    assert isinstance(columns, dict) and columns["label"] == store.labels
    with pytest.raises(EmotionError) as missing:
        emotion.load_store(photo_store[1].with_name("none.h5"))
    assert "emotion-extract" in missing.value.fix


@pytest.mark.slow
def test_a_session_model_reads_one_calls_faces_against_their_mean_as_emotion_predict_does(
    photo_store: tuple[Path, Path], people: list[Path], tmp_path: Path
) -> None:
    import emotion
    from tests.trained_run import train_tiny

    run = tmp_path / "session"
    train_tiny(photo_store[1], run, "data.baseline=session", "data.min_val_subjects=10")
    photos = people[:3]
    rows = cli_rows(run, photos, tmp_path / "s.csv", "--baseline", "session")
    with emotion.load(run) as model:
        assert model.baseline == "session"
        for photo, prediction in zip(photos, model.predict(photos), strict=True):
            assert_same(prediction.probabilities, rows[str(photo)])
            reference = rows[str(photo)]["reference"]
            assert prediction.reference == reference == "session: mean of 3 photos"
        with pytest.raises(EmotionError) as alone:
            model.predict(photos[0])  # read against itself a face says "no change"
        assert "data.baseline=session" in alone.value.problem and "2 or more" in alone.value.fix
        model.enroll(photos[0])  # a rest face replaces the call's own session
        assert model.predict(photos[1]).reference == f"enroll: {photos[0]}"
