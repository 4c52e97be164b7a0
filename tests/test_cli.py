"""The command line as users meet it: multirun sweeps, the summary, and clear errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.commands import TINY, emotion
from tests.trained_run import hydra_main, train_command


@pytest.mark.filterwarnings("ignore:The number of training batches .* logging interval")
def test_a_2x2_multirun_writes_four_metrics_and_a_summary(
    tiny_store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`emotion-train -m ...` from tmp_path, in this process (tests/trained_run.py): Hydra's
    main and basic launcher run the four jobs one after another, as in the subprocess, without
    its 5 s of imports. `emotion-summary` imports no torch and stays a subprocess."""
    from emotion.training.app import main

    monkeypatch.chdir(tmp_path)
    hydra_main(  # returns once every job has finished; a failed one ends it in SystemExit
        main,
        "-m",
        "data=store",
        f"data.path={tiny_store_path}",
        *TINY,
        "model.depth=1,2",
        "data.noise_std=0,0.01",
        "data.min_val_subjects=0",  # the tiny store validates on 3-4 people; the summary reads them
        "sweep_name=grid",
    )
    sweep = tmp_path / "outputs" / "train" / "multiruns" / "grid"
    found = sorted(sweep.rglob("metrics.json"))
    assert len(found) == 4
    for job in (path.parent.name for path in found):  # what the sweep varies, and a digest
        assert job.startswith("data.noise_std=") and ",model.depth=" in job
        assert "data.path" not in job and str(tiny_store_path.parent.name) not in job
    assert {json.loads(p.read_text())["config"]["model"]["depth"] for p in found} == {1, 2}
    table = emotion("emotion.summary", str(sweep), "--metric", "val/bal_acc", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["data.noise_std", "model.depth", "n"]
    assert len(lines) == 2 + 4
    means = [float(line.split()[3]) for line in lines[2:]]
    assert means == sorted(means, reverse=True)


def runs_in(folder: Path) -> list[Path]:
    """The run folders in `folder`, without the `latest` link to one of them."""
    return [path for path in folder.iterdir() if path.name != "latest"]


def test_rerunning_the_same_command_uses_the_same_run_directory(
    cli_first_run: Path, cli_run: Path, cli_rerun: subprocess.CompletedProcess[str]
) -> None:
    """The two commands are the shared cli_first_run and cli_rerun (conftest.py): `emotion-train
    data=store data.path=... <TINY>`, then the same with trainer.max_epochs=2, from one
    working directory. cli_run is that directory as the first command left it."""
    assert runs_in(cli_run.parent) == [cli_run] and "model.width=16" in cli_run.name
    second = cli_rerun
    assert second.returncode == 0, second.stderr[-3000:]
    assert runs_in(cli_first_run.parent) == [cli_first_run]
    assert cli_first_run.name == cli_run.name
    assert "resuming from" in second.stderr + second.stdout
    assert json.loads((cli_first_run / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model.detph=4"], "Could not override 'model.detph'"),
        (["model.width=abc"], "full_key: model.width"),
        (["experiment=seed_refrence"], "Could not find 'experiment/seed_refrence'"),
        (["data=store", "data.path=missing.h5"], "emotion-extract"),
        (["data.split_strategy=kfold", "data.fold=5"], "data.fold=5 is out of range"),
        (["data.normalization=nose"], "expected one of [nose_unit, none, procrustes"),
        (["data.noise_std=abc"], "full_key: data.noise_std"),
        (["resume=maybe"], "full_key: resume"),
        (["trainer.max_epoch=3"], "Key 'max_epoch' not in 'TrainerConfig'"),
        (["select=bestest"], "full_key: select"),
        (["model.width=0"], "model.width 0 is out of range"),
        (["model.depth=0"], "model.depth 0 is out of range"),
        (["model.lr=-1"], "model.lr -1.0 is out of range"),
        (["model.lr=nan"], "model.lr nan is out of range"),
        (["model.label_smoothing=2"], "model.label_smoothing 2.0 is out of range"),
        (["seed=abc"], "full_key: seed"),
        (["seed=-1"], "seed -1 is out of range"),
        (["trainer.max_epochs=-1"], "trainer.max_epochs -1 is out of range"),
        (["trainer.max_epochs=0"], "trainer.max_epochs 0 is out of range"),
        (["data.aspect_correction=banana"], "full_key: data.aspect_correction"),
        (["data.noise_std=inf"], "data.noise_std inf is out of range"),
        (["model.lr=1e308"], "model.lr 1e+308 is out of range"),
        (["model.weight_decay=1e308"], "model.weight_decay 1e+308 is out of range"),
        (["data.noise_std=1e308"], "data.noise_std 1e+308 is out of range"),
        (["data.rotation_aug_deg=1e308"], "data.rotation_aug_deg 1e+308 is out of range"),
        (["data.scale_aug_std=2"], "data.scale_aug_std 2.0 is out of range"),
        (["data.val_fraction=1"], "data.val_fraction 1.0 is out of range"),
        (
            ["callbacks.last_checkpoint.every_seconds=1e308"],
            "callbacks.last_checkpoint.every_seconds 1e+308 is out of range",
        ),
        (
            ["callbacks.last_checkpoint.every_seconds=-1"],
            "callbacks.last_checkpoint.every_seconds -1.0 is out of range",
        ),
        (["ema=on", "callbacks.ema.decay=2"], "callbacks.ema.decay 2.0 is out of range"),
        (["trainer.gradient_clip_val=1e308"], "trainer.gradient_clip_val 1e+308 is out of range"),
        (["data.fold=9", "data.num_folds=5"], "only apply to data.split_strategy=kfold"),
    ],
)
def test_bad_input_gets_a_clear_message_without_a_traceback(
    tmp_path: Path,
    tiny_store_path: Path,
    args: list[str],
    expected: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`emotion-train <args>` in this process (tests/trained_run.py: Hydra's composition and
    its report, then the app's run(cfg)), from tmp_path as the command ran. The console
    script's own exit status 2 and error:/fix: lines: test_a_user_error_is_printed_once."""
    store = (
        []
        if any(a.startswith("data=") for a in args)
        else ["data=store", f"data.path={tiny_store_path}"]
    )
    monkeypatch.chdir(tmp_path)
    status = train_command(tmp_path / "run", *store, *TINY, *args)
    stderr = capsys.readouterr().err
    assert status != 0
    assert expected in stderr
    assert "Traceback" not in stderr


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["sourc.root=x", "output=y.h5"], "Key 'sourc' not in 'ExtractConfig'"),
        (["source.root=x", "output=y.h5", "workers=abc"], "full_key: workers"),
    ],
)
def test_an_extract_setting_that_does_not_compose_is_a_user_error(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    """emotion-extract, as emotion-train: error:/fix: naming the key, exit 2, nothing written."""
    done = emotion("emotion.extract.app", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error: the settings do not compose" in done.stderr and expected in done.stderr
    assert done.stderr.count("error:") == 1 and "fix:" in done.stderr
    assert "Traceback" not in done.stderr and "HYDRA_FULL_ERROR" not in done.stderr
    assert not list(tmp_path.iterdir())


@pytest.mark.slow
def test_optuna_preset_runs_trials(tiny_store_path: Path, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the `sweep` extra")
    done = emotion(
        "emotion.training",
        "hparams_search=optuna",
        "data=store",
        f"data.path={tiny_store_path}",
        *TINY,
        "data.min_val_subjects=0",  # the trials return val/bal_acc: the tiny store validates
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=1",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "outputs" / "train" / "multiruns" / "optuna"
    assert len(list(sweep.rglob("metrics.json"))) == 2
    assert (sweep / "optimization_results.yaml").is_file()
