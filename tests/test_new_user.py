"""What a new user met on a fresh clone, run the way they ran it: console commands checked by
exit status, standard output and standard error. A subprocess where only a fresh interpreter
shows it (library noise at start-up, the exit status); otherwise the command's own `main` in
this process, which spares the 5 s of imports each subprocess pays."""

from __future__ import annotations

import csv
import io
import json
import shutil
import stat
import subprocess
from pathlib import Path

import pytest
import torch

from emotion.data.datamodule import LandmarkDataModule
from tests.commands import ROOT, TINY, emotion
from tests.trained_run import train_command

FACE = Path(__file__).parent / "fixtures" / "astronaut.jpg"


def test_resuming_shows_no_checkpoint_directory_warning(
    cli_rerun: subprocess.CompletedProcess[str],
) -> None:
    done = cli_rerun  # cli_run's command again, with trainer.max_epochs=2 (conftest.py)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "resuming from" in done.stdout + done.stderr
    assert "exists and is not empty" not in done.stdout + done.stderr
    assert "litlogger" not in done.stderr + done.stdout


def test_metrics_json_is_as_readable_as_the_other_files(cli_run: Path) -> None:
    metrics = stat.S_IMODE((cli_run / "metrics.json").stat().st_mode)
    log = stat.S_IMODE((cli_run / "train.log").stat().st_mode)
    assert metrics == log and metrics & stat.S_IROTH


def test_eval_takes_the_run_directory_positionally(
    cli_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`emotion-eval RUN` in this process (`main(argv)` is the console script; its subprocess
    exit status is tested in test_evaluate.py), on a copy: evaluation writes into the run."""
    from emotion.evaluate.app import main

    run_dir = tmp_path / cli_run.name  # the same name, with its '=' and ','
    shutil.copytree(cli_run, run_dir)
    monkeypatch.chdir(ROOT)
    main([str(run_dir), "bootstrap.resamples=50"])  # an error would exit 2 (SystemExit)
    result = json.loads((run_dir / "eval" / "metrics.json").read_text())
    trained = json.loads((run_dir / "metrics.json").read_text())
    assert result["metrics"]["test/acc"] == pytest.approx(trained["test"]["test/acc"], abs=1e-6)
    assert result["trained_on_synthetic"] is True
    assert "SYNTHETIC" in (run_dir / "eval" / "report.md").read_text()


def test_predict_without_output_writes_rows_to_standard_output(
    cli_run: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    """`emotion-predict RUN FACE` in this process (`main(argv)` is the console script; its
    subprocess exit status is tested below), reading file descriptors 1 and 2 as a shell does."""
    from emotion.predict.app import main

    monkeypatch.chdir(tmp_path)
    main([str(cli_run), str(FACE)])  # an error would exit 2 (SystemExit)
    done = capfd.readouterr()
    assert list(tmp_path.iterdir()) == [], "nothing is written into the working directory"
    (row,) = list(csv.DictReader(io.StringIO(done.out)))
    assert row["face"] == "True" and row["label"] in ("neutral", "anxious")
    assert row["trained_on_synthetic"] == "True"
    assert "SYNTHETIC" in done.err and "wrote 1 row to" in done.err


def test_predict_on_a_missing_path_predicts_the_rest_then_fails(
    cli_run: Path, tmp_path: Path
) -> None:
    output = tmp_path / "p.csv"
    missing = tmp_path / "nope.jpg"
    done = emotion(
        "emotion.predict", str(cli_run), str(missing), str(FACE), "-o", str(output), cwd=tmp_path
    )
    assert done.returncode == 2
    assert done.stderr.count("error:") == 1 and str(missing) in done.stderr
    rows = {row["source"]: row for row in csv.DictReader(output.open())}
    assert rows[str(FACE)]["face"] == "True"
    assert rows[str(missing)]["status"] == "unreadable"
    summary = json.loads(output.with_name("p.csv.summary.json").read_text())
    assert summary["trained_on_synthetic"] is True and summary["missing_inputs"] == [str(missing)]


def test_export_says_synthetic_and_prints_no_library_noise(cli_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="needs the export extra")
    import onnx

    output = tmp_path / "model.onnx"
    done = emotion("emotion.export", str(cli_run), "--output", str(output), cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    for noise in ("torchvision is not installed", "LeafSpec", "axis name: batch"):
        assert noise not in done.stderr, noise
    assert "SYNTHETIC" in done.stderr
    properties = {p.key: p.value for p in onnx.load(str(output)).metadata_props}
    assert json.loads(properties["trained_on_synthetic"]) is True
    assert json.loads(output.with_suffix(".json").read_text())["trained_on_synthetic"] is True


def test_a_user_error_is_printed_once(tmp_path: Path) -> None:
    done = emotion("emotion.training", "data=store", "data.path=missing.h5", *TINY, cwd=tmp_path)
    assert done.returncode == 2
    terminal = done.stdout + done.stderr  # Hydra's log lines go to standard output
    assert terminal.count("no landmark store at") == 1
    assert terminal.count("fix:") == 1 and "Traceback" not in terminal
    assert done.stderr.startswith("error:") or "\nerror:" in done.stderr
    assert not (tmp_path / "outputs").exists(), "a refused new run leaves no folder behind"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_trainer_gpu_without_a_gpu_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The README's `emotion-train trainer=gpu` on a CPU machine: Lightning's
    MisconfigurationException came out with the fix 'check the spelling of the keys'.
    In this process (tests/trained_run.py); test_a_user_error_is_printed_once runs the command."""
    monkeypatch.chdir(tmp_path)
    status = train_command(tmp_path / "run", "trainer=gpu", *TINY[:4])
    stderr = capsys.readouterr().err
    assert status == 2, stderr
    assert "asks for a GPU" in stderr and "leave out trainer=gpu" in stderr
    assert "spelling" not in stderr and "Traceback" not in stderr
    assert not (tmp_path / "data").exists(), "refused before any data was generated"


def test_kfold_on_seven_people_validates_on_every_class(make_store) -> None:
    """The README's k-fold command on the real sample (7 people, both classes each) failed
    with "class 'neutral' has no samples in the val split" for 5 and 3 folds."""
    people = [f"person{index}" for index in range(7)]
    label, subject = [], []
    for number, person in enumerate(people):
        for position in range(3 + number % 3):
            label.append(int(position > 0))  # one or two neutral, the rest anxious
            subject.append(person)
        label.append(0)
        subject.append(person)
    path = make_store(label, subject)
    for num_folds in (5, 3):
        for fold in range(num_folds):
            data = LandmarkDataModule(
                str(path), split_strategy="kfold", num_folds=num_folds, fold=fold
            )
            data.setup()
            for stage in ("train", "val", "test"):
                assert set(data.rows(stage).labels.tolist()) == {0, 1}, (num_folds, fold, stage)


def test_the_readme_sends_users_to_their_own_photos_not_to_our_sample() -> None:
    """`../shared` exists on the project's machines only: no README command or table names it
    (the Development section may say that the tests never read it), and a user's photos/
    folder is never committed by accident."""
    readme = (ROOT / "README.md").read_text()
    user_part = readme.split("## Development", 1)[0]
    assert "../shared" not in user_part and "aihub_sample" not in user_part
    assert "source.root=photos" in user_part
    ignored = subprocess.run(
        ["git", "check-ignore", "-q", "photos/ana_01.jpg"], cwd=ROOT, check=False
    )
    assert ignored.returncode == 0, "photos/ is not git-ignored"


def test_the_readmes_serving_block_runs_in_order_and_ensembles_are_seeds() -> None:
    """Run top to bottom, the README's curl meets the plain model it follows (a baseline
    model would answer 409), and the ensemble it exports is one recipe's seeds, not a
    hyperparameter grid."""
    readme = (ROOT / "README.md").read_text()
    serving = readme.split("## Serving", 1)[1].split("```", 2)[1]
    commands = [line for line in serving.splitlines() if line and not line.startswith("#")]
    curl = next(i for i, line in enumerate(commands) if line.startswith("curl "))
    served = [line for line in commands[:curl] if line.startswith("emotion-serve ")]
    assert served and "baseline" not in served[-1], commands
    exports = [line for line in readme.splitlines() if line.startswith("emotion-export ")]
    assert exports and not any("multiruns/grid" in line for line in exports), exports
