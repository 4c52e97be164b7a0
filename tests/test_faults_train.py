"""emotion-train refuses before Hydra writes: a run another command holds or would overwrite
keeps its files byte for byte, and a run name is a folder name, never a path
(docs/reliability.md)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emotion.training.resume import run_directory_lock
from tests.commands import TINY, emotion, in_runs
from tests.conftest import cli_train_args, small_overrides
from tests.trained_run import train_command


def run_files(run_dir: Path) -> dict[str, bytes]:
    """What a refused command must not touch: Hydra's record of the run and its log."""
    names = [".hydra/config.yaml", ".hydra/overrides.yaml", ".hydra/hydra.yaml", "train.log"]
    return {name: (run_dir / name).read_bytes() for name in names}


@pytest.fixture
def finished_run(cli_run: Path, tmp_path: Path) -> Path:
    """A copy of the CLI-made one-epoch run with its working directory, in tmp_path."""
    workdir = cli_run.parents[3]
    shutil.copytree(workdir, tmp_path / "work", symlinks=True)
    return tmp_path / "work" / cli_run.relative_to(workdir)


def train_in(run_dir: Path, store: Path, *extra: str):
    """The run's command again with `extra`, into that run (named: trainer.max_epochs and
    every other override would otherwise name another run; quoted for its '=' and ',')."""
    named = f"run_name='{run_dir.name}'"
    return emotion(
        "emotion.training", *cli_train_args(store), *extra, named, cwd=run_dir.parents[3]
    )


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


@pytest.mark.parametrize("name", ["checkpoints", "tensorboard", "train.log"])
def test_a_link_inside_the_run_is_refused_and_its_target_untouched(
    name: str, finished_run: Path, tiny_store_path: Path, tmp_path: Path
) -> None:
    """<run>/checkpoints -> elsewhere (a folder or a file planted by someone, or left by a
    script): refused before anything is written through it."""
    elsewhere = tmp_path / "elsewhere"
    (finished_run / name).rename(elsewhere)
    (finished_run / name).symlink_to(elsewhere)
    before = tree_bytes(elsewhere)
    done = train_in(finished_run, tiny_store_path, "trainer.max_epochs=2")
    assert done.returncode == 2, done.stderr[-2000:]
    assert "symbolic link" in done.stderr and f"{name} -> {elsewhere}" in done.stderr
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert tree_bytes(elsewhere) == before
    assert not (finished_run / "metrics.json").read_text().count('"epochs": 2')


def tree_bytes(path: Path) -> dict[str, bytes]:
    """Every file under path (or path itself) and its bytes."""
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {
        str(item.relative_to(path)): item.read_bytes() for item in path.rglob("*") if item.is_file()
    }


@pytest.mark.parametrize(
    "args",
    [
        ["run_name=../../escape"],
        ["run_name=.."],
        ["run_name=a/b"],
        ["run_name="],
        ["-m", "sweep_name=../escape", "seed=1,2"],
    ],
)
def test_a_run_name_is_a_name_not_a_path(args: list[str], tmp_path: Path) -> None:
    work = tmp_path / "work"
    work.mkdir()
    done = emotion("emotion.training", *args, cwd=work)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "is not a folder name" in done.stderr
    assert [path.name for path in tmp_path.iterdir()] == ["work"]
    assert not list(work.iterdir())


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run_name='a\nb'"], "control characters and quotes"),  # quoted: Hydra parses it
        (["run_name=a\tb"], "control characters and quotes"),
        (['run_name="it\'s"'], "control characters and quotes"),
        (["run_name='say \"hi\"'"], "control characters and quotes"),
        (["run_name=" + "x" * 300], "run_name is 300 bytes long"),
        (["-m", "sweep_name=" + "y" * 256, "seed=1,2"], "sweep_name is 256 bytes long"),
        (["-m", "sweep_name=a\tb", "seed=1,2"], "control characters and quotes"),
    ],
)
def test_a_run_name_a_shell_or_file_system_trips_on_is_refused(
    args: list[str], expected: str, tmp_path: Path
) -> None:
    """Refused before Hydra writes, with a fix about the name (not about the folder)."""
    done = emotion("emotion.training", *args, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert expected in done.stderr
    assert "shorter name" in done.stderr or "letters, digits" in done.stderr
    assert done.stderr.count("error:") == 1 and "Traceback" not in done.stderr
    assert not list(tmp_path.iterdir())


# -- a run that cannot be right stops, and says so ----------------------------------------


def test_a_loss_that_becomes_nan_stops_the_run_with_an_error(
    tiny_store_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """From the third step the loss is NaN (what an exploding run gives): the run stops with
    error:/fix:, and no metrics.json calls it finished."""
    from emotion.models.classifier import LandmarkClassifier

    original = LandmarkClassifier.training_step

    def exploding(self, batch, batch_idx):  # type: ignore[no-untyped-def]
        loss = original(self, batch, batch_idx)
        return loss * float("nan") if self.global_step >= 2 else loss

    monkeypatch.setattr(LandmarkClassifier, "training_step", exploding)
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / "run"
    status = train_command(
        run_dir, "data=store", f"data.path={tiny_store_path}", *TINY, "trainer.log_every_n_steps=1"
    )
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-2000:]
    assert "the training loss became nan" in stderr and "fix:" in stderr
    assert not (run_dir / "metrics.json").exists()


def test_enrollment_that_uses_up_a_class_is_refused(
    tiny_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status = train_command(
        tmp_path / "run",
        "data=store",
        f"data.path={tiny_store_path}",
        *TINY,
        "data.baseline=enrolled",
        "data.enroll_per_subject=100",
    )
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-2000:]
    assert "photos left to score" in stderr and "data.enroll_per_subject" in stderr


def test_the_same_run_name_on_other_people_is_refused(
    synthetic_run, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A run directory resumed with a store of other people: refused, not silently resumed."""
    from emotion.store.io import write_store
    from emotion.synthetic.generate import generate
    from emotion.synthetic.settings import SyntheticSettings

    other = tmp_path / "other.h5"
    write_store(other, generate(SyntheticSettings(num_subjects=30, frames_per_subject=16, seed=9)))
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    status = train_command(run_dir, *small_overrides(other, run_dir, "trainer.max_epochs=2"))
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-2000:]
    assert "trained on other people" in stderr


# -- checkpoints are whole or absent -------------------------------------------------------


def test_a_damaged_last_checkpoint_says_what_to_resume_from(
    synthetic_run, tiny_store_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    (run_dir / "metrics.json").unlink()
    last = run_dir / "checkpoints" / "last.ckpt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    status = train_command(
        run_dir, *small_overrides(tiny_store_path, run_dir, "trainer.max_epochs=2")
    )
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-2000:]
    assert "is not a readable PyTorch checkpoint" in stderr
    assert "ckpt_path=" in stderr and "best-epoch" in stderr


def test_a_full_disk_keeps_the_last_whole_checkpoint(
    synthetic_run,
    tiny_store_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The disk fills while a checkpoint is written (simulated: the write stops with ENOSPC
    half-way): error:/fix: about the disk, the earlier last.ckpt is intact, nothing partial
    is left, and the rerun resumes from it."""
    import errno

    import torch

    from emotion.checkpoint import read_checkpoint

    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    (run_dir / "metrics.json").unlink()
    last = run_dir / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    real_save = torch.save

    def half_then_full(obj, stream, *args, **kwargs):  # type: ignore[no-untyped-def]
        real_save(obj, stream, *args, **kwargs)
        stream.truncate(stream.tell() // 2)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("emotion.training.safety.torch.save", half_then_full)
    overrides = small_overrides(tiny_store_path, run_dir, "trainer.max_epochs=3")
    status = train_command(run_dir, *overrides)
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-2000:]
    assert "is full" in stderr and "resumes from" in stderr and "Traceback" not in stderr
    assert last.read_bytes() == before
    assert not list((run_dir / "checkpoints").glob("*.partial"))
    read_checkpoint(last)
    monkeypatch.undo()
    assert train_command(run_dir, *overrides) == 0
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 3


# -- exact resume --------------------------------------------------------------------------


@pytest.mark.slow
def test_kill_9_mid_epoch_then_resume_equals_an_uninterrupted_run(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    """The same command twice: once straight through, once killed with SIGKILL as soon as the
    first last.ckpt is on disk (mid-way through the next epoch), then rerun. With coordinate
    noise and dropout on, the resumed run's metrics equal the uninterrupted run's."""
    import signal
    import subprocess
    import sys
    import time

    from tests.commands import ROOT

    args = [
        *cli_train_args(tiny_store_path),
        "trainer.max_epochs=8",
        "data.noise_std=0.01",
        "model.dropout=0.3",
        "data.min_val_subjects=0",
        "select=last",  # the final epoch is tested: one trained after the resume
        "callbacks.last_checkpoint.every_seconds=0",  # last.ckpt at every epoch's end
        "progress_bar=none",
    ]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    straight.mkdir()
    killed.mkdir()
    assert emotion("emotion.training", *args, cwd=straight).returncode == 0
    process = subprocess.Popen(
        [sys.executable, "-m", "emotion.training", *args],
        cwd=killed,
        env={**__import__("os").environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 300
    while not list(in_runs(killed, "checkpoints/last.ckpt")):
        assert process.poll() is None and time.monotonic() < deadline, "no last.ckpt appeared"
        time.sleep(0.01)
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)
    (run_dir,) = in_runs(killed)
    assert not (run_dir / "metrics.json").exists(), "the kill came after the run finished"
    resumed = emotion("emotion.training", *args, cwd=killed)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert "resuming from" in resumed.stderr + resumed.stdout
    (expected_dir,) = in_runs(straight)
    expected = json.loads((expected_dir / "metrics.json").read_text())
    result = json.loads((run_dir / "metrics.json").read_text())
    assert result["epochs"] == expected["epochs"]
    for stage in ("val", "test"):
        assert set(result[stage]) == set(expected[stage])
        for key, value in expected[stage].items():
            assert result[stage][key] == pytest.approx(value, abs=1e-6), key


@pytest.fixture
def small_disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    """A real 600 KB file system (tmpfs; needs the right to mount, else the test skips)."""
    import subprocess

    mount = tmp_path / "disk"
    mount.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=600k", "tmpfs", str(mount)], capture_output=True
    )
    if made.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


@pytest.mark.slow
def test_a_really_full_disk_is_an_error_and_the_rerun_after_freeing_it_finishes(
    small_disk: Path, tiny_store_path: Path, tmp_path: Path
) -> None:
    import subprocess

    args = [*cli_train_args(tiny_store_path), f"hydra.run.dir={small_disk}/run"]
    args += ["model.width=64", "trainer.max_epochs=2", "progress_bar=none"]
    full = emotion("emotion.training", *args, cwd=tmp_path)
    assert full.returncode == 2, full.stderr[-3000:]
    assert full.stderr.count("error:") == 1 and "is full" in full.stderr
    assert "Traceback" not in full.stderr
    assert not list((small_disk / "run" / "checkpoints").glob("*.ckpt"))
    subprocess.run(["mount", "-o", "remount,size=50m", str(small_disk)], check=True)
    again = emotion("emotion.training", *args, cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert json.loads((small_disk / "run" / "metrics.json").read_text())["epochs"] == 2


def test_a_read_only_output_place_is_an_error_before_anything_runs(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    """outputs/ on a read-only file system (a tmpfs mounted read-only; a folder under a
    plain file where that cannot be mounted, which refuses even root)."""
    import subprocess

    place = tmp_path / "readonly"
    place.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(place)], capture_output=True
    )
    if mounted.returncode != 0:
        place.rmdir()
        place.write_text("a file, not a folder\n")
    try:
        done = emotion(
            "emotion.training",
            *cli_train_args(tiny_store_path),
            f"hydra.run.dir={place}/outputs/run",
            cwd=tmp_path,
        )
    finally:
        if mounted.returncode == 0:
            subprocess.run(["umount", "-l", str(place)], check=False)
    assert done.returncode == 2, done.stderr[-3000:]
    assert "cannot create the run directory" in done.stderr and "fix:" in done.stderr


# -- last.ckpt: on a time interval, at the end, on SIGTERM ----------------------------------


def test_last_checkpoint_is_written_once_in_a_short_run(
    tiny_store_path: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Five epochs well inside the interval: last.ckpt is written once, after the last."""
    from emotion.training.safety import AtomicCheckpointIO
    from tests.trained_run import train_tiny

    written: list[str] = []
    save = AtomicCheckpointIO.save_checkpoint

    def counted(self, checkpoint, path, storage_options=None):  # type: ignore[no-untyped-def]
        written.append(Path(path).name)
        save(self, checkpoint, path, storage_options)

    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", counted)
    result = train_tiny(tiny_store_path, tmp_path / "run", "trainer.max_epochs=5", "select=last")
    assert written.count("last.ckpt") == 1 and result["epochs"] == 5
    import torch

    last = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", weights_only=True)
    assert last["epoch"] == 4  # the final epoch's state (0-based)


@pytest.mark.slow
def test_sigterm_writes_last_checkpoint_and_the_rerun_finishes_the_run(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    import os
    import signal
    import subprocess
    import sys
    import time

    from tests.commands import ROOT

    args = [*cli_train_args(tiny_store_path), "trainer.max_epochs=40", "progress_bar=none"]
    process = subprocess.Popen(
        [sys.executable, "-m", "emotion.training", *args],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 300
    logs = list(in_runs(tmp_path, "train.log"))
    while not (logs and "epoch 2/40" in logs[0].read_text()):
        assert process.poll() is None and time.monotonic() < deadline, "no epoch logged"
        time.sleep(0.05)
        logs = list(in_runs(tmp_path, "train.log"))
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 128 + signal.SIGTERM, stderr[-3000:]
    run_dir = logs[0].parent
    assert (run_dir / "checkpoints" / "last.ckpt").is_file()
    assert not (run_dir / "metrics.json").exists()
    rerun = emotion("emotion.training", *args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "resuming from" in rerun.stderr + rerun.stdout
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 40
