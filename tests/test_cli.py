"""The command line as users meet it: multirun sweeps, the summary, and clear errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands import TINY, emotion


def test_a_2x2_multirun_writes_four_metrics_and_a_summary(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    done = emotion(
        "emotion.training",
        "-m",
        "data=store",
        f"data.path={tiny_store_path}",
        *TINY,
        "model.depth=1,2",
        "data.noise_std=0,0.01",
        "data.min_val_subjects=0",  # the tiny store validates on 3-4 people; the summary reads them
        "sweep_name=grid",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "outputs" / "train" / "multiruns" / "grid"
    found = sorted(sweep.rglob("metrics.json"))
    assert len(found) == 4
    assert {json.loads(p.read_text())["config"]["model"]["depth"] for p in found} == {1, 2}
    table = emotion("emotion.summary", str(sweep), "--metric", "val/bal_acc", cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    lines = table.stdout.strip().splitlines()
    assert lines[0].split()[:3] == ["data.noise_std", "model.depth", "n"]
    assert len(lines) == 2 + 4
    means = [float(line.split()[3]) for line in lines[2:]]
    assert means == sorted(means, reverse=True)


def test_rerunning_the_same_command_uses_the_same_run_directory(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    args = ["data=store", f"data.path={tiny_store_path}", *TINY]
    first = emotion("emotion.training", *args, cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    runs = list((tmp_path / "outputs" / "train" / "runs").iterdir())
    assert len(runs) == 1 and "model.width=16" in runs[0].name
    second = emotion("emotion.training", *args, "trainer.max_epochs=2", cwd=tmp_path)
    assert second.returncode == 0, second.stderr[-3000:]
    assert list((tmp_path / "outputs" / "train" / "runs").iterdir()) == runs
    assert "resuming from" in second.stderr + second.stdout
    assert json.loads((runs[0] / "metrics.json").read_text())["epochs"] == 2


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["model.detph=4"], "Key 'detph' is not in struct"),
        (["experiment=seed_refrence"], "Could not find 'experiment/seed_refrence'"),
        (["data=store", "data.path=missing.h5"], "emotion-extract"),
        (["data.split_strategy=kfold", "data.fold=5"], "data.fold=5 is out of range"),
        (["data.normalization=nose"], "choose one of ['nose_unit', 'none', 'procrustes'"),
        (["resume=maybe"], "resume='maybe' is not known"),
        (["data.fold=9", "data.num_folds=5"], "only apply to data.split_strategy=kfold"),
    ],
)
def test_bad_input_gets_a_clear_message_without_a_traceback(
    tmp_path: Path, tiny_store_path: Path, args: list[str], expected: str
) -> None:
    store = (
        []
        if any(a.startswith("data=") for a in args)
        else ["data=store", f"data.path={tiny_store_path}"]
    )
    done = emotion("emotion.training", *store, *TINY, *args, cwd=tmp_path)
    assert done.returncode != 0
    assert expected in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.slow
def test_optuna_preset_runs_trials(tiny_store_path: Path, tmp_path: Path) -> None:
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the `sweep` extra")
    done = emotion(
        "emotion.training",
        "hparams_search=optuna",
        "data=store",
        f"data.path={tiny_store_path}",
        *TINY,
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=1",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    sweep = tmp_path / "outputs" / "train" / "multiruns" / "optuna"
    assert len(list(sweep.rglob("metrics.json"))) == 2
    assert (sweep / "optimization_results.yaml").is_file()
