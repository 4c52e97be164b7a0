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

from emotion.errors import EmotionError
from emotion.locks import LockHeld, exclusive_lock
from emotion.rundir import CHECKPOINT_DIR, LOCK_FILE, METRICS_FILE, TENSORBOARD_DIR

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


def plan_resume(
    run_dir: Path,
    *,
    resume: str,
    ckpt_path: str | None,
    overwrite: bool,
    is_global_zero: bool = True,
) -> ResumePlan:
    """Resume from `ckpt_path`, or from `last.ckpt` (auto/must), or start fresh when safe.

    A run stopped before its first checkpoint left nothing to resume from or to lose but
    TensorBoard events of its first steps: it simply starts again (those events go, so the
    curves do not show the same steps twice). `resume` is one of the schema's (`Resume`,
    emotion/training/config.py)."""
    if ckpt_path:
        if not Path(ckpt_path).is_file():
            raise EmotionError(
                f"ckpt_path={ckpt_path} does not exist",
                "point ckpt_path at a .ckpt file, or drop it to resume from last.ckpt",
            )
        return ResumePlan(str(ckpt_path), f"resuming from ckpt_path={ckpt_path}")
    last = run_dir / CHECKPOINT_DIR / "last.ckpt"
    existing = run_results(run_dir)
    if overwrite:
        if (existing or stale_events(run_dir)) and is_global_zero:
            clear_run(run_dir)
        return ResumePlan(None, f"overwrite=true: starting over in {run_dir}")
    if resume == "must" and not last.is_file():
        raise EmotionError(
            f"resume=must, but there is no {last}",
            "check run_name (the run directory) or use resume=auto",
        )
    if resume in ("auto", "must") and last.is_file():
        return ResumePlan(str(last), f"resuming from {last}")
    if existing:
        shown = ", ".join(str(path.relative_to(run_dir)) for path in existing[:3])
        raise EmotionError(
            f"{run_dir} already holds an earlier run ({shown}"
            f"{', ...' if len(existing) > 3 else ''}) that this one would overwrite",
            "resume it with resume=auto (needs checkpoints/last.ckpt), pick another "
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
    a link planted there is refused, not followed. Re-entered by the process that holds it.
    Under DDP only global rank 0 takes it (`enabled`)."""
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
        HELD.add(key)
        try:
            yield
        finally:
            HELD.discard(key)
