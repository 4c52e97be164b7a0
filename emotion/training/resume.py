"""Starting a run in its directory: resume it, refuse to silently start over, or start
fresh; and hold the directory for the run (layout: `emotion.rundir`)."""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError
from emotion.locks import LockHeld, exclusive_lock
from emotion.rundir import CHECKPOINT_DIR, LAST_FILE, LOCK_FILE, METRICS_FILE, TENSORBOARD_DIR

# What Lightning needs to resume a fit; a weights-only or foreign file lacks some of them.
TRAINING_STATE_KEYS = (
    "pytorch-lightning_version",
    "epoch",
    "global_step",
    "loops",
    "optimizer_states",
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ResumePlan:
    ckpt_path: str | None
    reason: str


def run_results(run_dir: Path) -> list[Path]:
    """What an earlier run left here that starting over would lose: checkpoints, metrics."""
    found = sorted((run_dir / CHECKPOINT_DIR).glob("*.ckpt"))
    if (run_dir / METRICS_FILE).exists():
        found.append(run_dir / METRICS_FILE)
    return found


def stale_events(run_dir: Path) -> list[Path]:
    return sorted((run_dir / TENSORBOARD_DIR).glob("events.out.tfevents.*"))


def resumable_checkpoints(run_dir: Path) -> list[Path]:
    """The whole training checkpoints a rerun may resume from: `last.ckpt` (on an interval, at
    the end, on SIGTERM) and the monitored `best-*.ckpt` (whenever validation improves). Both
    are Lightning's full state (weights, optimizer, loops, callbacks' random states), written
    atomically (`AtomicCheckpointIO`), so a temporary `.partial` is never among them."""
    folder = run_dir / CHECKPOINT_DIR
    found = [folder / LAST_FILE] if (folder / LAST_FILE).is_file() else []
    return found + sorted(path for path in folder.glob("best-*.ckpt") if path.is_file())


def plan_resume(
    run_dir: Path,
    *,
    resume: str,
    ckpt_path: str | None,
    overwrite: bool,
    is_global_zero: bool = True,
    decide_only: bool = False,
) -> ResumePlan:
    """Resume from `ckpt_path`, or from the run's most advanced checkpoint (auto/must), or
    start fresh when safe.

    `last.ckpt` is written every few minutes, so a run killed (or stopped by a full disk)
    before its first one still has its best checkpoints: the rerun resumes from whichever is
    furthest along (`newest_checkpoint`). A run stopped before any checkpoint left nothing to
    resume from or to lose but TensorBoard events of its first steps: it simply starts again
    (those events go, so the curves do not show the same steps twice). `resume` is one of the
    schema's (`Resume`, emotion/training/config.py). `decide_only`: the pre-Hydra check, which
    needs the decision, not the file (choosing reads the checkpoints, with torch)."""
    if ckpt_path:
        if not Path(ckpt_path).is_file():
            raise EmotionError(
                f"ckpt_path={ckpt_path} does not exist",
                "point ckpt_path at a .ckpt file, or drop it to resume from the run's checkpoints",
            )
        return ResumePlan(str(ckpt_path), f"resuming from ckpt_path={ckpt_path}")
    existing = run_results(run_dir)
    if overwrite:
        if (existing or stale_events(run_dir)) and is_global_zero:
            clear_run(run_dir)
        return ResumePlan(None, f"overwrite=true: starting over in {run_dir}")
    candidates = resumable_checkpoints(run_dir)
    if resume == "must" and not candidates:
        raise EmotionError(
            f"resume=must, but {run_dir / CHECKPOINT_DIR} holds no checkpoint to resume from",
            "check run_name (the run directory) or use resume=auto",
        )
    if resume in ("auto", "must") and candidates:
        chosen = candidates[0] if decide_only else newest_checkpoint(candidates)
        return ResumePlan(str(chosen), f"resuming from {chosen}")
    if existing:
        shown = ", ".join(str(path.relative_to(run_dir)) for path in existing[:3])
        raise EmotionError(
            f"{run_dir} already holds an earlier run ({shown}"
            f"{', ...' if len(existing) > 3 else ''}) that this one would overwrite",
            "resume it with resume=auto (needs a checkpoint in checkpoints/), pick another "
            "run_name=..., or start over explicitly with overwrite=true",
        )
    if stale_events(run_dir):
        if is_global_zero:
            for path in stale_events(run_dir):
                path.unlink(missing_ok=True)
        return ResumePlan(
            None,
            f"an earlier attempt in {run_dir} stopped before its first checkpoint: starting again",
        )
    return ResumePlan(None, f"starting a new run in {run_dir}")


def newest_checkpoint(candidates: list[Path]) -> Path:
    """The checkpoint furthest along in training (its global step, then epoch; last.ckpt on a
    tie, written at the epoch's very end), read from inside: file times mislead (a copied run,
    a temperature written into the best checkpoint after the test). An unreadable one is an
    error naming the others, not silently passed over for an older state."""
    if len(candidates) == 1:
        return candidates[0]

    def progress(path: Path) -> tuple[bool, int, int, bool]:
        """Whole training states first (a weights-only best, `save_weights_only`, cannot
        resume), then the furthest along."""
        others = [str(other) for other in candidates if other != path]
        fix = (
            f"resume from another with ckpt_path={others[0]}, remove {path.name}, or start "
            "over with overwrite=true"
        )
        from emotion.checkpoint import read_checkpoint  # torch: only once a checkpoint is read

        checkpoint = read_checkpoint(path, fix)
        step, epoch = checkpoint.get("global_step"), checkpoint.get("epoch")
        if not isinstance(step, int) or not isinstance(epoch, int):
            raise EmotionError(f"{path} is not a training checkpoint (no global_step)", fix)
        whole = all(key in checkpoint for key in TRAINING_STATE_KEYS)
        return whole, step, epoch, path.name == LAST_FILE

    return max(candidates, key=progress)


def clear_run(run_dir: Path) -> None:
    """Remove checkpoints, TensorBoard events and metrics of an earlier run (overwrite=true)."""
    log.warning("overwrite=true: removing the earlier run's results in %s", run_dir)
    for name in (CHECKPOINT_DIR, TENSORBOARD_DIR):
        shutil.rmtree(run_dir / name, ignore_errors=True)
    (run_dir / METRICS_FILE).unlink(missing_ok=True)


# The run directories this process holds, so the pre-Hydra check (emotion.training.launch)
# and the run itself share one lock.
HELD: set[Path] = set()


@contextmanager
def run_directory_lock(run_dir: Path, *, enabled: bool = True) -> Iterator[None]:
    """Hold an exclusive lock on the run directory for the life of a training run.

    Two runs in one directory would mix their checkpoints, events and metrics.json, and one
    could resume from the other's live last.ckpt. The lock is `flock` on `<run_dir>/.lock`,
    released by the kernel even after kill -9, so a crashed run never blocks the next one;
    a link planted there is refused, not followed, as is any link inside the directory
    (`refuse_links`). Re-entered by the process that holds it. Under DDP only global rank 0
    takes it (`enabled`)."""
    key = run_dir.resolve()
    if not enabled or key in HELD:
        yield
        return
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise EmotionError(
            f"cannot create the run directory {run_dir}: {error.strerror}",
            "run from a folder you can write to, or point EMOTION_ROOT (where outputs/ goes) at "
            "one",
        ) from None
    held = ExitStack()
    try:
        held.enter_context(
            exclusive_lock(
                run_dir / LOCK_FILE, f"pid {os.getpid()}", "give this run another run_name=..."
            )
        )
    except LockHeld as other:
        raise EmotionError(
            f"{run_dir} is in use by another emotion-train ({other.holder or 'another process'})",
            "wait for that run to finish, or give this one another run_name=...",
        ) from None
    with held:
        refuse_links(run_dir)
        HELD.add(key)
        try:
            yield
        finally:
            HELD.discard(key)


def refuse_links(run_dir: Path) -> None:
    """A run writes only inside its own directory: a symbolic link there (`checkpoints ->
    elsewhere`, `tensorboard`, `train.log`, ...) would have checkpoints, events or logs
    written, and with overwrite=true deleted, wherever it points. Refused, target untouched.
    (A link AT the run directory, e.g. outputs/ on a bigger disk, is the user's own choice.)"""
    links = sorted(path for path in run_dir.iterdir() if path.is_symlink())
    if links:
        shown = ", ".join(f"{path.name} -> {os.readlink(path)}" for path in links[:3])
        raise EmotionError(
            f"{run_dir} holds a symbolic link ({shown}); a run writes its checkpoints, events "
            "and logs inside its own folder, never through a link",
            f"remove the link (rm '{links[0]}'; its target is left untouched), or give this run "
            "another run_name=...",
        )


def check_resumable(path: str | Path, model: Any, fix: str) -> None:
    """Refuse, before training, a checkpoint this model cannot resume from: Lightning would
    stop with a traceback (a KeyError on a text file or a foreign dict, a size mismatch in
    load_state_dict on another model's weights)."""
    from emotion.checkpoint import (
        STATE_DICT_KEY,
        check_same_architecture,
        hyperparameters,
        read_checkpoint,
    )

    checkpoint = read_checkpoint(path, fix)
    missing = [key for key in TRAINING_STATE_KEYS if key not in checkpoint]
    if missing:
        raise EmotionError(
            f"{path} is not a whole training checkpoint of emotion-train (no {', '.join(missing)})",
            fix,
        )
    check_same_architecture(path, hyperparameters(checkpoint), dict(model.hparams))  # names them
    saved, wanted = checkpoint[STATE_DICT_KEY], model.state_dict()
    differ = sorted(set(saved) ^ set(wanted)) or [
        name
        for name, value in wanted.items()
        if tuple(getattr(saved[name], "shape", ())) != tuple(value.shape)
    ]
    if differ:
        raise EmotionError(
            f"{path} holds another model's weights ({len(differ)} tensors differ in name or "
            f"shape, e.g. {differ[0]})",
            fix,
        )
