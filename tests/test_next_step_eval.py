"""After training (issue 28): each evaluation keeps its own folder, predictions on a labelled
folder carry the true label, help texts say what they mean, counts read as English."""

from __future__ import annotations

import csv
import json
import shutil
import zipfile
from pathlib import Path
from typing import Any

import pytest

from emotion.evaluate.evaluation import evaluate
from tests.trained_run import eval_config

FACE = Path(__file__).parent / "fixtures" / "astronaut.jpg"


def test_each_evaluation_keeps_its_own_folder(
    synthetic_run: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    """Other settings, another folder named after them; the earlier report stays as it was.
    The same settings again land in the same folder, as do other resample counts (the same
    scores, intervals more or less precise)."""
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    first = evaluate(eval_config(f"run_dir={run_dir}", "bootstrap.resamples=20"))
    report = run_dir / "eval" / "metrics.json"
    assert Path(first["output_dir"]) == run_dir / "eval"
    before = report.read_bytes()
    second = evaluate(eval_config(f"run_dir={run_dir}", "bootstrap.resamples=20", "split=val"))
    assert Path(second["output_dir"]) == run_dir / "eval-split=val"
    assert report.read_bytes() == before
    assert json.loads((run_dir / "eval-split=val" / "metrics.json").read_text())["split"] == "val"
    third = evaluate(
        eval_config(f"run_dir={run_dir}", "bootstrap.resamples=30", "calibration_bins=5")
    )
    assert Path(third["output_dir"]) == run_dir / "eval-calibration_bins=5"
    again = evaluate(eval_config(f"run_dir={run_dir}", "bootstrap.resamples=30"))
    assert again["output_dir"] == first["output_dir"]
    assert sorted(path.name for path in run_dir.glob("eval*")) == [
        "eval",
        "eval-calibration_bins=5",
        "eval-split=val",
    ]


def help_text(parse_args: Any, capsys: pytest.CaptureFixture[str]) -> str:
    """What `COMMAND --help` prints, its lines joined as one text."""
    with pytest.raises(SystemExit) as done:
        parse_args(["--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())


def test_help_shows_the_defaults_and_says_tested_checkpoint(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from emotion.predict.app import parse_args as predict_args
    from emotion.serve.app import parse_args as serve_args

    serve, predict = help_text(serve_args, capsys), help_text(predict_args, capsys)
    assert "port to listen on (default: 8000)" in serve
    assert "(loopback) (default: 127.0.0.1)" in serve
    for text in (serve, predict):
        assert "best checkpoint" not in text
        assert "the checkpoint its training tested" in text
    assert "faces scored at once (default: 256)" in predict


def test_predictions_on_labelled_folders_carry_the_true_label(
    synthetic_run: tuple[Path, dict[str, Any]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Labels as extraction learns them: the folder or archive name (AI Hub's Korean names
    included); blank where no name gives one."""
    pytest.importorskip("mediapipe", reason="emotion-predict needs the extract extra")
    from emotion.predict.app import main

    photos = tmp_path / "photos"
    for folder in ("불안", "neutral", "others"):
        (photos / folder).mkdir(parents=True)
        shutil.copy(FACE, photos / folder / "face.jpg")
    with zipfile.ZipFile(photos / "[원천]EMOIMG_불안_TRAIN_01.zip", "w") as archive:
        archive.write(FACE, "face.jpg")
    output = tmp_path / "predictions.csv"
    main([str(synthetic_run[0]), str(photos), "-o", str(output)])
    with output.open(newline="") as handle:
        rows = {row["source"]: row["true_label"] for row in csv.DictReader(handle)}
    assert sorted(rows.values()) == ["", "anxious", "anxious", "neutral"], rows
    assert rows[str(photos / "neutral" / "face.jpg")] == "neutral"
    assert rows[str(photos / "others" / "face.jpg")] == ""
    assert "wrote 4 rows" in capsys.readouterr().err


def test_one_of_anything_is_singular(
    synthetic_run: tuple[Path, dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("mediapipe", reason="emotion-predict needs the extract extra")
    from emotion.predict.app import main

    main([str(synthetic_run[0]), str(FACE)])
    summary = capsys.readouterr().err
    assert "wrote 1 row to" in summary and "1 photo, 0 video frames, 1 face," in summary
