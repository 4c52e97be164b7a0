"""emotion-eval, emotion-export, emotion-predict and emotion-summary under bad input and
unfinished runs (docs/reliability.md): settings no run could finish with, runs still training,
half-finished sweeps, NaN metrics, and the synthetic -> real scoring of a baseline model."""

from __future__ import annotations

from collections.abc import Callable

import pytest


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
