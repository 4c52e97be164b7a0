"""emotion-eval, emotion-export, emotion-predict and emotion-summary under bad input and
unfinished runs (docs/reliability.md): settings no run could finish with, runs still training,
half-finished sweeps, NaN metrics, and the synthetic -> real scoring of a baseline model."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from emotion.store.io import write_store
from emotion.synthetic.generate import generate
from emotion.synthetic.settings import SyntheticSettings
from tests.commands import ROOT
from tests.conftest import CONF_DIR
from tests.trained_run import train_tiny


def run_main(main: Callable[[list[str]], None], argv: list[str], capsys) -> tuple[int, str, str]:
    """A console script's main in this process: its exit status, standard output and error."""
    try:
        main(argv)
    except SystemExit as stopped:
        return int(stopped.code or 0), *capsys.readouterr()
    return 0, *capsys.readouterr()


def exit_of(main: Callable[[list[str]], None], argv: list[str], capsys) -> tuple[int, str]:
    """A console script's main in this process: its exit status and standard error."""
    status, _, stderr = run_main(main, argv, capsys)
    return status, stderr


@contextmanager
def held_by_another_process(lock: Path) -> Iterator[int]:
    """`lock` held as emotion-train holds its run's .lock (emotion.locks.exclusive_lock), by
    another process, for the life of the block; yields that process's pid."""
    code = (
        "import sys, time; from pathlib import Path; from emotion.locks import exclusive_lock\n"
        "with exclusive_lock(Path(sys.argv[1]), 'pid %d' % __import__('os').getpid(), '-'):\n"
        "    print('held', flush=True); time.sleep(600)"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(lock)], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()


def eval_main(argv: list[str]) -> None:
    from emotion.evaluate.app import main

    main(argv)


def export_main(argv: list[str]) -> None:
    from emotion.export.app import main

    main(argv)


def serve_main(argv: list[str]) -> None:
    pytest.importorskip("fastapi", reason="emotion-serve needs the serve extra")
    from emotion.serve.app import main

    main(argv)


def predict_main(argv: list[str]) -> None:
    pytest.importorskip("mediapipe", reason="emotion-predict needs the extract extra")
    from emotion.predict.app import main

    main(argv)


def stopped_copy(run_dir: Path, tmp_path: Path) -> Path:
    """A copy of a finished run as a run that stopped before the end leaves it: no
    metrics.json."""
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "metrics.json").unlink()
    return copy


@pytest.mark.parametrize(
    ("main", "options", "named"),
    [
        (eval_main, ["bootstrap.resamples=1000000000"], "bootstrap.resamples 1000000000"),
        (eval_main, ["calibration_bins=100000000"], "calibration_bins 100000000"),
        (predict_main, ["photo.jpg", "--threads", "100000"], "--threads 100000"),
        (serve_main, ["--workers", "100000"], "--workers 100000"),
        (export_main, ["--tolerance", "nan"], "--tolerance nan"),
        (export_main, ["--tolerance", "-1"], "--tolerance -1.0"),
    ],
)
def test_options_no_run_could_finish_with_are_refused_first(
    synthetic_run, capsys, main, options: list[str], named: str
) -> None:
    """A billion resamples asked 358 GiB (MemoryError); a hundred million calibration bins ran
    on and on; 100000 torch threads ended in `libgomp: Out of memory` (and emotion-serve took
    100000 FaceMesh workers); a NaN or negative
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


def finished_run(folder: Path, seed: int, value: float) -> Path:
    """A finished run as emotion-train leaves it: its config, checkpoints and metrics.json."""
    (folder / ".hydra").mkdir(parents=True)
    (folder / ".hydra" / "config.yaml").write_text(f"seed: {seed}\n")
    (folder / "checkpoints").mkdir()
    payload = {"config": {"seed": seed, "model": {"depth": 2}}, "test": {"test/bal_acc": value}}
    (folder / "metrics.json").write_text(json.dumps(payload))
    return folder


def summary_main(argv: list[str]) -> None:
    from emotion.summary.app import main

    main(argv)


def test_a_nan_metric_is_counted_and_shown_not_a_crash(tmp_path: Path, capsys) -> None:
    """statistics.stdev raised AttributeError on a NaN; the NaN is now left out of the mean
    and std, and counted where the figure is shown, in every format."""
    for seed, value in enumerate([0.7, 0.8, float("nan")]):
        finished_run(tmp_path / f"seed={seed}", seed, value)
    for fmt in ("table", "markdown"):
        status, out, err = run_main(summary_main, [str(tmp_path), "--format", fmt], capsys)
        assert status == 0, err
        assert "0.7500 ± 0.0707 (1 nan)" in out, out
    status, out, err = run_main(summary_main, [str(tmp_path), "--format", "json"], capsys)
    assert status == 0, err
    (group,) = json.loads(out)["groups"]
    assert group["n"] == 3 and group["not_finite"] == {"nan": 1}
    assert group["mean"] == pytest.approx(0.75)
    status, out, err = run_main(summary_main, [str(tmp_path), "--compare"], capsys)
    assert status == 0, err
    assert "0.7500 ± 0.0707 (1 nan)" in out, out


def test_a_half_finished_sweep_says_how_many_runs_it_leaves_out(tmp_path: Path, capsys) -> None:
    """Two finished runs, one stopped (its checkpoints, no metrics.json) and one still
    training (its .lock held, an earlier metrics.json beside it): the summary was `2 runs`,
    mean ± std as if complete; it now counts and names the other two in every format."""
    for seed, value in enumerate([0.7, 0.8]):
        finished_run(tmp_path / f"seed={seed}", seed, value)
    stopped = finished_run(tmp_path / "seed=2", 2, 0.1)
    (stopped / "metrics.json").unlink()
    training = finished_run(tmp_path / "seed=3", 3, 0.1)
    with held_by_another_process(training / ".lock") as pid:
        outputs = {
            fmt: run_main(summary_main, [str(tmp_path), "--format", fmt], capsys)
            for fmt in ("table", "markdown", "json")
        }
        compared = {
            fmt: run_main(summary_main, [str(tmp_path), "--compare", "--format", fmt], capsys)
            for fmt in ("markdown", "json")
        }
    for fmt, (status, out, err) in outputs.items():
        assert status == 0, err
        if fmt != "json":
            assert "0.7500 ± 0.0707" in out, (fmt, out)  # the finished two only
        assert f"warning: 2 run(s) under {tmp_path} have not finished" in err
        assert str(stopped) in err and str(training) in err and f"pid {pid}" in err
    line = "2 of 4 run(s) have not finished (1 stopped or failed, 1 still training)"
    assert f"unfinished: {line}" in outputs["table"][1]
    assert f"Unfinished: {line}" in outputs["markdown"][1]
    table = json.loads(outputs["json"][1])
    assert table["groups"][0]["values"] == [0.7, 0.8]
    unfinished = table["unfinished"]
    assert unfinished["count"] == 2 and unfinished["of_runs"] == 4
    assert {item["run"] for item in unfinished["runs"]} == {str(stopped), str(training)}
    assert "run(s) have not finished, left out of every figure." in compared["markdown"][1]
    (row,) = json.loads(compared["json"][1])["rows"]
    assert row["runs"] == 2 and row["unfinished"]["count"] == 2


FACE = Path(__file__).parent / "fixtures" / "astronaut.jpg"


def model_commands(model: Path, tmp_path: Path) -> dict[str, tuple[Callable, list[str]]]:
    """emotion-eval, emotion-export and emotion-predict of `model`, each with its options."""
    return {
        "eval": (eval_main, [str(model), "bootstrap.resamples=20"]),
        "export": (export_main, [str(model)]),
        "predict": (predict_main, [str(model), str(FACE), "-o", str(tmp_path / "p.csv")]),
    }


@pytest.mark.parametrize("command", ["eval", "export", "predict"])
def test_a_run_still_training_is_refused_and_nothing_is_written_into_it(
    synthetic_run, tmp_path: Path, capsys, command: str
) -> None:
    """A run whose emotion-train holds its .lock: its checkpoints are best-so-far, and eval/
    or export/ went into it without a word. Now error:/fix: exit 2 naming the lock's holder,
    the fix naming a checkpoint to give explicitly; the run is left as it was."""
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    main, argv = model_commands(run_dir, tmp_path)[command]
    with held_by_another_process(run_dir / ".lock") as pid:
        before = sorted(path.name for path in run_dir.iterdir())
        status, stderr = exit_of(main, argv, capsys)
    assert status == 2, stderr
    why = f"still training (emotion-train (pid {pid}) holds {run_dir / '.lock'})"
    assert f"error: {run_dir} has not finished training: {why}" in stderr
    assert "fix: wait for it to finish, or name a checkpoint explicitly" in stderr, stderr
    assert stderr.count("error:") == 1 and "Traceback" not in stderr
    assert sorted(path.name for path in run_dir.iterdir()) == before
    assert not (tmp_path / "p.csv").exists()


def test_a_run_that_stopped_before_finishing_is_refused(
    synthetic_run, tmp_path: Path, capsys
) -> None:
    """Checkpoints but no metrics.json and no emotion-train running: stopped or failed."""
    run_dir = stopped_copy(synthetic_run[0], tmp_path)
    status, stderr = exit_of(eval_main, [str(run_dir), "bootstrap.resamples=20"], capsys)
    assert status == 2, stderr
    why = "stopped or failed (no metrics.json, and no emotion-train is running in it)"
    assert f"error: {run_dir} has not finished training: {why}" in stderr
    assert "fix: finish it (rerun its emotion-train command: it resumes" in stderr
    assert not (run_dir / "eval").exists()


def test_a_sweep_with_an_unfinished_run_is_not_an_ensemble_of_best_so_far(
    synthetic_run, tmp_path: Path, capsys
) -> None:
    sweep = tmp_path / "sweep"
    for name in ("seed=1", "seed=2"):
        shutil.copytree(synthetic_run[0], sweep / name)
    (sweep / "seed=2" / "metrics.json").unlink()
    status, stderr = exit_of(eval_main, [str(sweep), "bootstrap.resamples=20"], capsys)
    assert status == 2, stderr
    assert f"error: 1 of the 2 runs under {sweep} have not finished training" in stderr
    assert str(sweep / "seed=2") in stderr
    assert not list(sweep.glob("eval*"))


def test_a_checkpoint_named_explicitly_is_taken_with_a_loud_warning(
    synthetic_run, tmp_path: Path, capsys
) -> None:
    """The fix the refusal gives: a checkpoint named by its path is scored as it is."""
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    last = run_dir / "checkpoints" / "last.ckpt"
    output = tmp_path / "eval"
    with held_by_another_process(run_dir / ".lock"):
        status, stderr = exit_of(
            eval_main, [str(last), f"output_dir={output}", "bootstrap.resamples=20"], capsys
        )
    assert status == 0, stderr
    assert f"warning: {last} belongs to {run_dir}, which is still training" in stderr
    assert (output / "metrics.json").is_file()


def hydra_saved_config(run_dir: Path, *overrides: str) -> None:
    """What Hydra saves as <run>/.hydra/config.yaml: train.yaml composed, unresolved, with
    `${hydra:runtime.output_dir}` and the default data's `path: ${.synthetic.output}`."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose(config_name="train", overrides=list(overrides))
    (run_dir / ".hydra").mkdir(exist_ok=True)
    OmegaConf.save(cfg, run_dir / ".hydra" / "config.yaml")


def test_a_checkpoint_of_a_run_without_metrics_finds_the_store_its_config_names(
    synthetic_run, tiny_store_path: Path, tmp_path: Path, capsys
) -> None:
    """Before metrics.json, the run's config is Hydra's .hydra/config.yaml, whose
    `${hydra:...}` cannot resolve outside the run; resolving it whole failed, and every path
    stayed a placeholder: `error: no landmark store at ${.synthetic.output}`. Each value
    is now resolved where it can be."""
    run_dir = stopped_copy(synthetic_run[0], tmp_path)
    hydra_saved_config(run_dir, f"data.synthetic.output={tiny_store_path}")
    assert "${hydra:" in (run_dir / ".hydra" / "config.yaml").read_text()
    last = run_dir / "checkpoints" / "last.ckpt"
    output = tmp_path / "eval"
    status, stderr = exit_of(
        eval_main, [str(last), f"output_dir={output}", "bootstrap.resamples=20"], capsys
    )
    assert status == 0, stderr
    assert "${" not in stderr
    result = json.loads((output / "metrics.json").read_text())
    assert result["data"]["path"] == str(tiny_store_path)


def test_a_store_path_known_only_inside_the_run_is_named_with_its_fix(
    synthetic_run, tmp_path: Path, capsys
) -> None:
    run_dir = stopped_copy(synthetic_run[0], tmp_path)
    hydra_saved_config(run_dir, "data.synthetic.output=${hydra:runtime.cwd}/data/s.h5")
    last = run_dir / "checkpoints" / "last.ckpt"
    status, stderr = exit_of(eval_main, [str(last), "bootstrap.resamples=20"], capsys)
    assert status == 2, stderr
    assert "can only be resolved inside that training run" in stderr
    assert "fix: pass data.path=<store.h5>" in stderr
    assert not (run_dir / "eval").exists()
