"""A run stopped at any moment resumes from its most advanced whole checkpoint, whichever
callback wrote it (last.ckpt every 5 minutes, best-*.ckpt whenever validation improves), and
finishes with the uninterrupted run's metrics; a checkpoint that is not this model's own
training state is refused before training (docs/reliability.md)."""

from __future__ import annotations

import errno
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.commands import ROOT, emotion, in_runs
from tests.conftest import cli_train_args, small_overrides
from tests.trained_run import train_command

EPOCHS = 6


def kill_args(store: Path) -> list[str]:
    """A tiny run with coordinate noise and dropout on (random draws to resume exactly), a
    validation split (so best-*.ckpt is written and tested), and last.ckpt's DEFAULT interval
    of 300 s: well inside it, so only the end, a stop request or best-*.ckpt checkpoint it."""
    return [
        *cli_train_args(store),
        f"trainer.max_epochs={EPOCHS}",
        "data.noise_std=0.01",
        "model.dropout=0.3",
        "data.min_val_subjects=0",
        "monitor=val/loss",  # improves nearly every epoch: best-*.ckpt keeps moving on
        "monitor_mode=min",
        "progress_bar=none",
    ]


@pytest.fixture(scope="module")
def straight(tiny_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The same command run straight through: the metrics every resumed run must equal."""
    work = tmp_path_factory.mktemp("straight")
    done = emotion("emotion.training", *kill_args(tiny_store_path), cwd=work)
    assert done.returncode == 0, done.stderr[-3000:]
    (metrics,) = in_runs(work, "metrics.json")
    return json.loads(metrics.read_text())


def start(args: list[str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "emotion.training", *args],
        cwd=cwd,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def wait_for(process: subprocess.Popen[bytes], ready: Callable[[], bool]) -> None:
    """Poll (not sleep blindly) until `ready`, the process still running."""
    deadline = time.monotonic() + 300
    while not ready():
        assert process.poll() is None, "the run ended before the moment to stop it"
        assert time.monotonic() < deadline, "the moment to stop it never came"
        time.sleep(0.01)


def logged(work: Path, text: str) -> Callable[[], bool]:
    def ready() -> bool:
        logs = list(in_runs(work, "train.log"))
        return bool(logs) and text in logs[0].read_text()

    return ready


def checkpoints(work: Path) -> list[Path]:
    return sorted(in_runs(work, "checkpoints/*.ckpt"))


def most_advanced(paths: list[Path]) -> Path:
    """The oracle: the checkpoint with the most optimizer steps (last.ckpt on a tie)."""
    import torch

    def steps(path: Path) -> tuple[int, bool]:
        return torch.load(path, weights_only=True)["global_step"], path.name == "last.ckpt"

    return max(paths, key=steps)


def kill_9(process: subprocess.Popen[bytes]) -> None:
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=60)


def same_metrics(work: Path, expected: dict[str, Any]) -> None:
    (metrics,) = in_runs(work, "metrics.json")
    result = json.loads(metrics.read_text())
    assert result["epochs"] == expected["epochs"] == EPOCHS
    assert Path(result["tested_checkpoint"]).name == Path(expected["tested_checkpoint"]).name
    for stage in ("val", "test"):
        assert set(result[stage]) == set(expected[stage])
        for key, value in expected[stage].items():
            assert result[stage][key] == pytest.approx(value, abs=1e-6), key


@pytest.mark.slow
def test_kill_9_in_the_first_epoch_then_the_same_command_starts_again(
    straight: dict[str, Any], tiny_store_path: Path, tmp_path: Path
) -> None:
    args = kill_args(tiny_store_path)
    process = start(args, tmp_path)
    wait_for(process, lambda: bool(list(in_runs(tmp_path, "tensorboard/events.*"))))
    kill_9(process)
    assert not checkpoints(tmp_path), "the kill came after the first checkpoint"
    rerun = emotion("emotion.training", *args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert "starting again" in rerun.stderr + rerun.stdout
    same_metrics(tmp_path, straight)


@pytest.mark.slow
def test_kill_9_before_the_first_last_checkpoint_resumes_from_the_best(
    straight: dict[str, Any], tiny_store_path: Path, tmp_path: Path
) -> None:
    """Epochs done, last.ckpt not yet due (300 s): the best checkpoint is a whole training
    state (weights, AdamW's moments, loops, random states), so the rerun resumes from it."""
    args = kill_args(tiny_store_path)
    process = start(args, tmp_path)
    wait_for(process, logged(tmp_path, f"epoch 4/{EPOCHS}"))
    kill_9(process)
    found = checkpoints(tmp_path)
    assert found and not [path for path in found if path.name == "last.ckpt"]
    expected = most_advanced(found)
    rerun = emotion("emotion.training", *args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming from {expected}" in rerun.stderr + rerun.stdout
    same_metrics(tmp_path, straight)


@pytest.mark.slow
def test_kill_9_after_last_checkpoint_resumes_from_the_most_advanced(
    straight: dict[str, Any], tiny_store_path: Path, tmp_path: Path
) -> None:
    """SIGTERM after epoch 2 writes last.ckpt and stops; the rerun resumes, is killed -9
    two epochs on; the third run resumes from whichever checkpoint is furthest along."""
    args = kill_args(tiny_store_path)
    process = start(args, tmp_path)
    wait_for(process, logged(tmp_path, f"epoch 2/{EPOCHS}"))
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 128 + signal.SIGTERM
    assert [path.name for path in checkpoints(tmp_path)].count("last.ckpt") == 1
    process = start(args, tmp_path)
    resumed, later = logged(tmp_path, "resuming from"), logged(tmp_path, f"epoch 5/{EPOCHS}")
    wait_for(process, lambda: resumed() and later())
    kill_9(process)
    expected = most_advanced(checkpoints(tmp_path))  # read before the rerun rewrites them
    rerun = emotion("emotion.training", *args, cwd=tmp_path)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert f"resuming from {expected}" in rerun.stderr + rerun.stdout
    same_metrics(tmp_path, straight)


def test_a_full_disk_before_the_first_last_checkpoint_then_the_rerun_resumes(
    tiny_store_path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The disk is full when last.ckpt is first written (simulated ENOSPC): error:/fix: says
    to rerun the same command, and that rerun resumes from the best checkpoint and finishes."""
    from emotion.training.safety import AtomicCheckpointIO

    save = AtomicCheckpointIO.save_checkpoint

    def full_for_last(self, checkpoint, path, storage_options=None):  # type: ignore[no-untyped-def]
        if Path(path).name == "last.ckpt":
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        save(self, checkpoint, path, storage_options)

    run_dir = tmp_path / "run"
    overrides = small_overrides(tiny_store_path, run_dir, "trainer.max_epochs=3")
    monkeypatch.setattr(AtomicCheckpointIO, "save_checkpoint", full_for_last)
    assert train_command(run_dir, *overrides) == 2
    assert "is full" in capsys.readouterr().err
    assert [path.name for path in (run_dir / "checkpoints").iterdir()][0].startswith("best-")
    monkeypatch.undo()
    status = train_command(run_dir, *overrides)
    assert status == 0, capsys.readouterr().err[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 3


def test_a_weights_only_checkpoint_further_along_is_passed_over(
    synthetic_run,  # type: ignore[no-untyped-def]
    tiny_store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """A best checkpoint saved weights-only (+callbacks.model_checkpoint.save_weights_only)
    cannot resume a fit however far along it is: the rerun takes the whole last.ckpt."""
    import shutil

    import torch

    run_dir = tmp_path / "run"
    shutil.copytree(synthetic_run[0], run_dir)
    (run_dir / "metrics.json").unlink()
    last = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    weights = {
        key: value for key, value in last.items() if key not in ("loops", "optimizer_states")
    }
    torch.save({**weights, "global_step": 10**6}, run_dir / "checkpoints" / "best-epoch099.ckpt")
    status = train_command(
        run_dir, *small_overrides(tiny_store_path, run_dir, "trainer.max_epochs=2")
    )
    assert status == 0, capsys.readouterr().err[-3000:]
    assert json.loads((run_dir / "metrics.json").read_text())["epochs"] == 2


# -- a checkpoint to resume that is not this model's training state ------------------------


def foreign_files(folder: Path, other_width_run: Path) -> dict[str, Path]:
    import torch

    files = {"text": folder / "notes.ckpt", "dict": folder / "dict.ckpt"}
    files["text"].write_text("hello, not a checkpoint\n")  # torch.load: a KeyError
    torch.save({"weights": torch.zeros(3)}, files["dict"])
    files["lightning-like"] = folder / "bare.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}}, files["lightning-like"])
    files["other width"] = other_width_run / "checkpoints" / "last.ckpt"
    other_module = torch.load(files["other width"], weights_only=True)
    other_module["hyper_parameters"] = {"hidden": 32}  # another LightningModule's
    files["other module"] = folder / "other-module.ckpt"
    torch.save(other_module, files["other module"])
    return files


@pytest.mark.parametrize("kind", ["text", "dict", "lightning-like", "other width", "other module"])
def test_a_foreign_ckpt_path_is_refused_before_training(
    kind: str,
    synthetic_run,  # type: ignore[no-untyped-def]
    tiny_store_path: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """synthetic_run is a model.width=32 run; this one asks for width 16."""
    path = foreign_files(tmp_path, synthetic_run[0])[kind]
    run_dir = tmp_path / "run"
    overrides = small_overrides(tiny_store_path, run_dir, "model.width=16", f"ckpt_path={path}")
    status = train_command(run_dir, *overrides)
    stderr = capsys.readouterr().err
    assert status == 2, stderr[-3000:]
    assert stderr.count("error:") == 1 and "fix:" in stderr and "Traceback" not in stderr
    assert str(path) in stderr
    assert not (run_dir / "checkpoints").exists() and not (run_dir / "metrics.json").exists()
