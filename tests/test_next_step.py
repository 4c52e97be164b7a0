"""The next step always in sight after `emotion-train` (issue 28): the run folder and the
commands that use it, `latest` links, epoch lines with the time left, a rerun that meets a
finished run, no folder left by a refused command, and a typo's nearest key."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hydra.core.hydra_config import HydraConfig

from emotion.training.precheck import composed
from tests.commands import TINY, emotion


def test_a_run_ends_with_its_folder_and_the_commands_that_use_it(
    cli_first_run: Path, cli_rerun: subprocess.CompletedProcess[str]
) -> None:
    """Typed as the user would, relative to the working directory the command ran in."""
    out = cli_rerun.stdout + cli_rerun.stderr
    assert cli_rerun.returncode == 0, out[-3000:]
    run = f"outputs/train/runs/{cli_first_run.name}"
    assert f"run folder: {run}" in out
    for command in ("emotion-eval", "emotion-serve", "tensorboard --logdir"):
        assert f"{command} {run}" in out, command


def test_a_rerun_of_a_finished_run_says_so_in_one_line(
    cli_rerun: subprocess.CompletedProcess[str],
) -> None:
    out = cli_rerun.stdout + cli_rerun.stderr
    (line,) = [line for line in out.splitlines() if "already finished" in line]
    assert "(1 epoch, test/bal_acc=" in line
    assert "extending it to trainer.max_epochs=2" in line
    assert "overwrite=true" in line and "run_name=" in line


def test_each_epoch_line_shows_elapsed_and_the_time_left(
    cli_rerun: subprocess.CompletedProcess[str],
) -> None:
    out = cli_rerun.stdout + cli_rerun.stderr
    assert re.search(r"epoch 2/2 .*\(elapsed \d+:\d\d, about 0:00 left\)", out), out[-2000:]


def test_latest_names_the_last_run_and_is_counted_once(cli_run: Path, tmp_path: Path) -> None:
    """`outputs/train/runs/latest` is a relative link (a copied clone keeps it working); the
    summary and an ensemble glob over the runs folder see one run, not two."""
    workdir = tmp_path / "clone"
    shutil.copytree(cli_run.parents[3], workdir, symlinks=True)
    runs = workdir / "outputs" / "train" / "runs"
    assert (runs / "latest").is_symlink() and (runs / "latest").resolve() == runs / cli_run.name
    done = emotion("emotion.summary", "outputs/train/runs", "--metric", "test/bal_acc", cwd=workdir)
    assert done.returncode == 0, done.stderr
    assert "1 run in 1 group" in done.stderr

    from emotion.inference.ensemble import checkpoints_of

    assert len(checkpoints_of(f"{runs}/*")) == 1
    from emotion.evaluate.evaluation import evaluate
    from tests.trained_run import eval_config

    result = evaluate(eval_config(f"run_dir={runs / 'latest'}", "bootstrap.resamples=20"))
    assert Path(result["output_dir"]) == (runs / cli_run.name / "eval").resolve()
    assert (
        checkpoints_of(str(runs / "latest"))[0].resolve()
        == checkpoints_of(str(runs / cli_run.name))[0].resolve()
    )


@pytest.mark.slow  # three emotion-train processes that import torch: 15-20 s each, loaded
@pytest.mark.parametrize(
    "args",
    [
        ["trainer=gpu"],
        ["data=store", "data.path=does/not/exist.h5"],
        ["data=store", "data.path={store}", "select=best", "data.val_fraction=0"],
    ],
    ids=["no-gpu", "no-store", "no-validation"],
)
def test_a_refused_run_leaves_no_folder(
    args: list[str], tmp_path: Path, tiny_store_path: Path
) -> None:
    """The error comes once Hydra has made the run folder; it is removed again, and an
    outputs/ that was there before stays as it was."""
    if args[0] == "trainer=gpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("this machine has a GPU: trainer=gpu would train")
    (tmp_path / "outputs" / "keep").mkdir(parents=True)
    args = [arg.format(store=tiny_store_path) for arg in args]
    tiny = [arg for arg in TINY if not arg.startswith("trainer.accelerator")]
    done = emotion("emotion.training", *args, *tiny, cwd=tmp_path)
    assert done.returncode == 2, done.stderr[-2000:]
    assert "error:" in done.stderr and "fix:" in done.stderr
    left = sorted(str(path.relative_to(tmp_path)) for path in (tmp_path / "outputs").rglob("*"))
    assert left == ["outputs/keep"]


@pytest.mark.slow  # emotion-train processes that import torch
def test_a_refused_sweep_leaves_no_folder_and_a_partly_trained_one_keeps_all(
    tmp_path: Path, tiny_store_path: Path
) -> None:
    """A sweep's job refused as a single run is (no GPU): the sweep folder it made goes. A
    sweep whose first job trained before the second was refused (no such store) keeps both."""
    import torch

    (tmp_path / "outputs" / "keep").mkdir(parents=True)
    tiny = [arg for arg in TINY if not arg.startswith("trainer.accelerator")]
    if not torch.cuda.is_available():
        done = emotion("emotion.training", "-m", "trainer=gpu", "seed=1,2", *tiny, cwd=tmp_path)
        assert done.returncode == 2 and "fix:" in done.stderr, done.stderr[-2000:]
        left = sorted(str(p.relative_to(tmp_path)) for p in (tmp_path / "outputs").rglob("*"))
        assert left == ["outputs/keep"]

    paths = f"data.path={tiny_store_path},{tmp_path / 'missing.h5'}"
    done = emotion(
        "emotion.training", "-m", "data=store", paths, "data.min_val_subjects=0", *tiny,
        "trainer.accelerator=cpu", "sweep_name=partly", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    sweep = tmp_path / "outputs" / "train" / "multiruns" / "partly"
    assert list(sweep.glob("*/metrics.json")), "the trained job was removed with the sweep"


def run_folder(*overrides: str) -> str:
    """The run folder emotion-train would use for these overrides, composed as it does."""
    cfg = composed(list(overrides))
    HydraConfig.instance().set_config(cfg)
    return Path(str(cfg.hydra.run.dir)).name


def test_the_number_of_epochs_is_part_of_a_run_name() -> None:
    """A one-epoch smoke test is not the default run, and the next plain emotion-train does
    not resume it; a key given twice is named once, by the value that counts."""
    assert run_folder() == "default"
    assert run_folder("trainer.max_epochs=1") == "trainer.max_epochs=1"
    twice = run_folder("trainer.max_epochs=1", "trainer.max_epochs=2")
    assert twice.startswith("trainer.max_epochs=2") and "max_epochs=1" not in twice


def test_run_name_latest_is_refused(tmp_path: Path) -> None:
    done = emotion("emotion.training", "run_name=latest", cwd=tmp_path)
    assert done.returncode == 2 and "run_name=latest" in done.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("module", "args", "hint"),
    [
        ("emotion.training", ["model.dept=4"], "did you mean model.depth? use model.depth=4"),
        ("emotion.training", ["trainer.max_epoch=3"], "did you mean trainer.max_epochs?"),
        (
            "emotion.evaluate.app",
            ["outputs/train/runs/default", "bootstrap.resample=9"],
            "did you mean bootstrap.resamples? use bootstrap.resamples=9",
        ),
    ],
)
def test_a_typo_gets_the_nearest_key(
    module: str, args: list[str], hint: str, tmp_path: Path
) -> None:
    done = emotion(module, *args, cwd=tmp_path)
    assert done.returncode == 2
    fix = [line for line in done.stderr.splitlines() if line.strip().startswith("fix:")]
    assert len(fix) == 1 and hint in fix[0], done.stderr
    assert "+model.dept" not in done.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.slow  # a sweep of two tiny jobs in one subprocess: about 20 s on a loaded machine
def test_a_sweep_is_linked_as_multiruns_latest(tmp_path: Path, tiny_store_path: Path) -> None:
    store = ["data=store", f"data.path={tiny_store_path}", *TINY]
    done = emotion("emotion.training", "-m", "seed=1,2", *store, "sweep_name=smoke", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    latest = tmp_path / "outputs" / "train" / "multiruns" / "latest"
    assert latest.is_symlink() and latest.resolve().name == "smoke"
    assert "emotion-summary outputs/train/multiruns/smoke" in done.stdout + done.stderr
    summary = emotion("emotion.summary", "outputs/train/multiruns/latest", cwd=tmp_path)
    assert summary.returncode == 0, summary.stderr
    assert "2 runs in 1 group" in summary.stderr


def test_the_progress_bar_shows_the_time_of_the_whole_run(
    tiny_store_path: Path, tmp_path: Path, capfd: pytest.CaptureFixture[str]
) -> None:
    """The bar's own clock times this epoch's batches; its `time` slot is the whole run's."""
    from tests.trained_run import train_tiny

    train_tiny(tiny_store_path, tmp_path / "run", "progress_bar=tqdm", "trainer.max_epochs=2")
    shown = capfd.readouterr()
    bar = shown.out + shown.err  # Lightning's tqdm bar writes to standard output
    assert re.search(r"time=elapsed \d+:\d\d, about \d+:\d\d left", bar), bar[-1500:]
