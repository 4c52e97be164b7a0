"""emotion-eval, emotion-export, emotion-predict and emotion-summary under bad input and
unfinished runs (docs/reliability.md): settings no run could finish with, runs still training,
half-finished sweeps, NaN metrics, and the synthetic -> real scoring of a baseline model."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from emotion.store.io import write_store
from emotion.synthetic.generate import generate
from emotion.synthetic.settings import SyntheticSettings
from tests.trained_run import train_tiny


def exit_of(main: Callable[[list[str]], None], argv: list[str], capsys) -> tuple[int, str]:
    """A console script's main in this process: its exit status and standard error."""
    try:
        main(argv)
    except SystemExit as stopped:
        return int(stopped.code or 0), capsys.readouterr().err
    return 0, capsys.readouterr().err


def eval_main(argv: list[str]) -> None:
    from emotion.evaluate.app import main

    main(argv)


def export_main(argv: list[str]) -> None:
    from emotion.export.app import main

    main(argv)


def predict_main(argv: list[str]) -> None:
    pytest.importorskip("mediapipe", reason="emotion-predict needs the extract extra")
    from emotion.predict.app import main

    main(argv)


@pytest.mark.parametrize(
    ("main", "options", "named"),
    [
        (eval_main, ["bootstrap.resamples=1000000000"], "bootstrap.resamples 1000000000"),
        (eval_main, ["calibration_bins=100000000"], "calibration_bins 100000000"),
        (predict_main, ["photo.jpg", "--threads", "100000"], "--threads 100000"),
        (export_main, ["--tolerance", "nan"], "--tolerance nan"),
        (export_main, ["--tolerance", "-1"], "--tolerance -1.0"),
    ],
)
def test_options_no_run_could_finish_with_are_refused_first(
    synthetic_run, capsys, main, options: list[str], named: str
) -> None:
    """A billion resamples asked 358 GiB (MemoryError); a hundred million calibration bins ran
    on and on; 100000 torch threads ended in `libgomp: Out of memory`; a NaN or negative
    tolerance refused every graph after the whole export. Each is now error:/fix:, exit 2,
    before the model loads (no SYNTHETIC warning) and before anything is written."""
    run_dir, _ = synthetic_run
    before = sorted(path.name for path in run_dir.iterdir())
    status, stderr = exit_of(main, [str(run_dir), *options], capsys)
    assert status == 2, stderr
    assert f"error: {named} is out of range" in stderr, stderr
    assert "fix: use 1 to " in stderr or "fix: use a largest" in stderr, stderr
    assert "SYNTHETIC" not in stderr and "Traceback" not in stderr
    assert sorted(path.name for path in run_dir.iterdir()) == before


@pytest.fixture(scope="module")
def enrolled_synthetic_run(tmp_path_factory: pytest.TempPathFactory, tiny_store_path: Path) -> Path:
    """A tiny data.baseline=enrolled run on the tiny synthetic store."""
    run_dir = tmp_path_factory.mktemp("enrolled-synthetic") / "run"
    train_tiny(tiny_store_path, run_dir, "data.baseline=enrolled")
    return run_dir


def test_a_baseline_model_scores_every_person_of_another_store(
    enrolled_synthetic_run: Path, tmp_path: Path, capsys
) -> None:
    """The synthetic -> real check of docs/results.md: `data.split_strategy=none` scores every
    person of another store against their own reference photo. It was refused: `the train
    split has no 'neutral' photos left to score`, of a train split that is empty by design."""
    other = tmp_path / "other.h5"
    store = generate(SyntheticSettings(num_subjects=6, frames_per_subject=8, seed=11))
    write_store(other, store)
    output = tmp_path / "transfer"
    status, stderr = exit_of(
        eval_main,
        [
            str(enrolled_synthetic_run),
            f"data.path={other}",
            "data.split_strategy=none",
            f"output_dir={output}",
            "bootstrap.resamples=20",
        ],
        capsys,
    )
    assert status == 0, stderr
    result = json.loads((output / "metrics.json").read_text())
    assert result["counts"]["subjects"] == 6
    references = result["baseline"]["reference_photos"]
    assert sorted(references) == sorted(set(store.subject.tolist()))
    assert all(len(photos) == 1 for photos in references.values())  # enroll_per_subject=1
    assert result["counts"]["photos"] == len(store) - len(references)
