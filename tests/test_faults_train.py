"""emotion-train refuses before Hydra writes: a run another command holds or would overwrite
keeps its files byte for byte, and a run name is a folder name, never a path
(docs/reliability.md)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from emotion.training.resume import run_directory_lock
from tests.commands import emotion
from tests.conftest import cli_train_args


def run_files(run_dir: Path) -> dict[str, bytes]:
    """What a refused command must not touch: Hydra's record of the run and its log."""
    names = [".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml", "train.log"]
    return {name: (run_dir / name).read_bytes() for name in names}


@pytest.fixture
def finished_run(cli_run: Path, tmp_path: Path) -> Path:
    """A copy of the CLI-made one-epoch run with its working directory, in tmp_path."""
    workdir = cli_run.parents[3]
    shutil.copytree(workdir, tmp_path / "work")
    return tmp_path / "work" / cli_run.relative_to(workdir)


def train_in(run_dir: Path, store: Path, *extra: str):
    return emotion("emotion.training", *cli_train_args(store), *extra, cwd=run_dir.parents[3])


def test_a_refused_rerun_leaves_the_run_as_it_was(
    finished_run: Path, tiny_store_path: Path
) -> None:
    before = run_files(finished_run)
    done = train_in(finished_run, tiny_store_path, "resume=never", "trainer.max_epochs=99")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "already holds an earlier run" in done.stderr and "fix:" in done.stderr
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert run_files(finished_run) == before


def test_a_run_in_use_is_refused_before_hydra_writes(
    finished_run: Path, tiny_store_path: Path
) -> None:
    before = run_files(finished_run)
    with run_directory_lock(finished_run):  # another emotion-train holds it
        done = train_in(finished_run, tiny_store_path, "trainer.max_epochs=2")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "is in use by another emotion-train" in done.stderr
    assert run_files(finished_run) == before


def test_a_planted_lock_link_is_refused_not_followed(
    finished_run: Path, tiny_store_path: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    (finished_run / ".lock").unlink(missing_ok=True)
    (finished_run / ".lock").symlink_to(victim)
    done = train_in(finished_run, tiny_store_path, "trainer.max_epochs=2")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "symbolic link" in done.stderr
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("name", ["../../escape", "..", "a/b", ""])
def test_a_run_name_is_a_name_not_a_path(name: str, tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = emotion("emotion.training", f"run_name={name}", cwd=work)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "is not a folder name" in done.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["work"]
    assert not list(work.iterdir())
