"""Sweeps beyond one process: Hydra's joblib launcher (all of one machine) and submitit's
local executor (the Slurm path, run here), as users run them, against the basic launcher."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from emotion.store.io import read_store
from tests.commands import TINY, emotion
from tests.extract_tree import build_aihub_tree
from tests.test_extract_run import assert_same_rows

SWEEP = [
    "data.split_strategy=kfold",
    "data.num_folds=2",
    "data.fold=0,1",
    "seed=1,2",
    "data.min_val_subjects=0",
    "threads=1",  # the basic launcher's jobs thread as the parallel ones do: same numbers
    "progress_bar=none",
]


def sweep_metrics(root: Path, name: str) -> dict[str, dict]:
    folder = root / "outputs" / "train" / "multiruns" / name
    return {
        path.parent.name: json.loads(path.read_text())
        for path in sorted(folder.glob("*/metrics.json"))
    }


def run_sweep(store: Path, root: Path, name: str, *launcher: str) -> dict[str, dict]:
    done = emotion(
        "emotion.training",
        "-m",
        *launcher,
        "data=store",
        f"data.path={store}",
        *TINY,
        *SWEEP,
        f"sweep_name={name}",
        cwd=root,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return sweep_metrics(root, name)


@pytest.fixture(scope="module")
def basic(tiny_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict]:
    return run_sweep(tiny_store_path, tmp_path_factory.mktemp("basic"), "basic")


def assert_same_results(found: dict[str, dict], expected: dict[str, dict]) -> None:
    assert sorted(found) == sorted(expected) and len(found) == 4
    for job, result in expected.items():
        assert "/" not in job and "data.fold=" in job and "seed=" in job
        for stage in ("val", "test"):
            for key, value in result[stage].items():
                assert found[job][stage][key] == pytest.approx(value, abs=1e-6), (job, key)


@pytest.mark.slow
def test_a_joblib_sweep_gives_the_basic_launchers_results(
    basic: dict[str, dict], tiny_store_path: Path, tmp_path: Path
) -> None:
    found = run_sweep(tiny_store_path, tmp_path, "joblib", "launcher=joblib")
    assert_same_results(found, basic)
    logs = [
        (tmp_path / "outputs/train/multiruns/joblib" / job / "train.log").read_text()
        for job in found
    ]
    assert all("torch threads: 1" in log for log in logs)


@pytest.mark.slow
def test_a_submitit_local_sweep_gives_the_basic_launchers_results(
    basic: dict[str, dict], tiny_store_path: Path, tmp_path: Path
) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the `slurm` extra")
    found = run_sweep(tiny_store_path, tmp_path, "submitit", "launcher=submitit_local")
    assert_same_results(found, basic)
    assert list((tmp_path / "outputs/train/multiruns/submitit/.submitit").iterdir())


@pytest.mark.slow
def test_a_sharded_extraction_through_submitit_merges_into_the_unsharded_store(
    tmp_path: Path,
) -> None:
    pytest.importorskip("hydra_plugins.hydra_submitit_launcher", reason="needs the `slurm` extra")
    tree = build_aihub_tree(tmp_path / "aihub")
    whole = emotion(
        "emotion.extract.app",
        f"source.root={tree.root}",
        f"output={tmp_path}/whole.h5",
        cwd=tmp_path,
    )
    assert whole.returncode == 0, whole.stderr[-3000:]
    sharded = emotion(
        "emotion.extract.app",
        "-m",
        "hydra/launcher=submitit_local",
        f"source.root={tree.root}",
        f"output={tmp_path}/sharded.h5",
        "shard.count=2",
        "shard.index=range(2)",
        cwd=tmp_path,
    )
    assert sharded.returncode == 0, sharded.stderr[-3000:]
    assert len(list(tmp_path.glob("sharded.shard-*-of-2.h5"))) == 2
    merge = Path(sys.executable).parent / "emotion-extract-merge"  # the console script
    merged = subprocess.run(
        [str(merge), str(tmp_path / "sharded.h5")], capture_output=True, text=True, timeout=300
    )
    assert merged.returncode == 0, merged.stderr[-3000:]
    assert_same_rows(read_store(tmp_path / "sharded.h5"), read_store(tmp_path / "whole.h5"))


@pytest.mark.slow
def test_two_optuna_workers_share_one_study(tiny_store_path: Path, tmp_path: Path) -> None:
    """Two `emotion-train -m hparams_search=optuna` processes on one SQLite study (Optuna's
    own storage): the study ends with both workers' trials."""
    optuna = pytest.importorskip("optuna", reason="needs the `sweep` extra")
    pytest.importorskip("hydra_plugins.hydra_optuna_sweeper", reason="needs the `sweep` extra")
    storage = f"sqlite:///{tmp_path / 'study.db'}"
    command = [
        sys.executable,
        "-m",
        "emotion.training",
        "hparams_search=optuna",
        "data=store",
        f"data.path={tiny_store_path}",
        *TINY,
        "data.min_val_subjects=0",
        "progress_bar=none",
        "threads=1",
        f"hydra.sweeper.storage={storage}",
        "hydra.sweeper.study_name=shared",
        "hydra.sweeper.n_trials=2",
        "hydra.sweeper.sampler.n_startup_trials=1",
    ]
    from tests.commands import ROOT

    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    workers = [
        subprocess.Popen(
            [*command, f"sweep_name=worker{index}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    for worker in workers:
        _, stderr = worker.communicate(timeout=600)
        assert worker.returncode == 0, stderr[-3000:]
    study = optuna.load_study(study_name="shared", storage=storage)
    finished = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(finished) == 4 and sorted(t.number for t in finished) == [0, 1, 2, 3]
    for index in range(2):
        sweep = tmp_path / "outputs" / "train" / "multiruns" / f"worker{index}"
        assert len(list(sweep.glob("*/metrics.json"))) == 2


@pytest.mark.slow
def test_workers_started_together_create_one_sqlite_study_without_a_race(tmp_path: Path) -> None:
    """Six processes opening one new SQLite storage at once: bare `RDBStorage(url)` lost
    4 of 30 such processes here to Alembic's `UNIQUE constraint failed: alembic_version`
    (what made two Optuna workers' CI run red); through prepare_storage, under the lock,
    every one finishes and the tables are there once."""
    pytest.importorskip("optuna", reason="needs the `sweep` extra")
    from tests.commands import ROOT

    url = f"sqlite:///{tmp_path / 'study.db'}"
    code = f"from emotion.training.study import prepare_storage; prepare_storage({url!r})"
    env = {**__import__("os").environ, "PYTHONPATH": str(ROOT)}
    processes = [
        subprocess.Popen([sys.executable, "-c", code], env=env, stderr=subprocess.PIPE, text=True)
        for _ in range(6)
    ]
    errors = [process.communicate(timeout=300)[1] for process in processes]
    assert [process.returncode for process in processes] == [0] * 6, errors
    import sqlite3

    with sqlite3.connect(tmp_path / "study.db") as database:
        versions = database.execute("select count(*) from alembic_version").fetchone()[0]
    assert versions == 1
