"""Whether a run directory's training has finished, asked without disturbing it.

A run still training has only best-so-far checkpoints, which training goes on replacing;
evaluation, prediction and export refuse a run directory until it has finished
(metrics.json written, `.lock` free), and the sweep summary counts such runs apart. The
lock is probed with `emotion.locks.lock_holder`: never held past the check, nothing written.
"""

from __future__ import annotations

import sys
from pathlib import Path

from emotion.errors import EmotionError
from emotion.locks import lock_holder
from emotion.rundir import CHECKPOINT_DIR, HYDRA_CONFIG, LAST_FILE, LOCK_FILE, METRICS_FILE

TRAINING = "still training"
STOPPED = "stopped or failed"


def run_state(folder: Path) -> tuple[str, str] | None:
    """(TRAINING or STOPPED, why) for a run directory whose training has not finished; None
    for a finished run, or a folder that is no run."""
    holder = lock_holder(folder / LOCK_FILE)
    if holder is not None:
        return TRAINING, f"emotion-train ({holder}) holds {folder / LOCK_FILE}"
    if (folder / METRICS_FILE).is_file():
        return None
    if any((folder / name).exists() for name in (HYDRA_CONFIG, CHECKPOINT_DIR)):
        return STOPPED, f"no {METRICS_FILE}, and no emotion-train is running in it"
    return None


def run_of_checkpoint(ckpt: Path) -> Path | None:
    """<run>/checkpoints/<file>.ckpt -> <run>; None for a checkpoint kept elsewhere."""
    folder = ckpt.resolve().parent
    return folder.parent if folder.name == CHECKPOINT_DIR else None


def explicit_checkpoint(run_dir: Path) -> Path:
    """The checkpoint to name for a best-so-far model: last.ckpt, else the newest best."""
    last = run_dir / CHECKPOINT_DIR / LAST_FILE
    if last.is_file():
        return last
    best = sorted((run_dir / CHECKPOINT_DIR).glob("best-*.ckpt"))
    return best[-1] if best else last


def check_finished(run_dirs: list[Path], argument: str) -> None:
    """Refuse run directories whose training has not finished, naming how many and why."""
    found = [(run, state) for run in run_dirs if (state := run_state(run)) is not None]
    if not found:
        return
    run, (state, why) = found[0]
    what = (
        f"{run} has not finished training: {state} ({why})"
        if len(run_dirs) == 1
        else f"{len(found)} of the {len(run_dirs)} runs under {argument} have not finished "
        f"training, e.g. {run}: {state} ({why})"
    )
    wait = (
        "wait for it to finish"
        if state == TRAINING
        else "finish it (rerun its emotion-train command: it resumes from last.ckpt)"
    )
    raise EmotionError(
        f"{what}; its checkpoints are best-so-far, not the model training chooses",
        f"{wait}, or name a checkpoint explicitly, e.g. {explicit_checkpoint(run)} "
        "(taken as it is, with a warning)",
    )


def warn_if_unfinished(ckpt: Path) -> None:
    """A checkpoint named explicitly is taken as it is; say so loudly when its run has not
    finished: another checkpoint may yet be the one training chooses."""
    run = run_of_checkpoint(ckpt)
    state = run_state(run) if run is not None else None
    if state is not None:
        print(
            f"warning: {ckpt} belongs to {run}, which is {state[0]} ({state[1]}): it is taken "
            "as it is, a best-so-far checkpoint and not necessarily the model that training "
            "will choose; outputs written beside the run go into an unfinished run",
            file=sys.stderr,
        )
