"""What a user types next: the `latest` links beside the runs and sweeps, the commands printed
when a run ends, and the line that says a rerun met a finished run.

`outputs/train/runs/latest` names the last run started and `outputs/train/multiruns/latest`
the last sweep, as relative links, so `emotion-eval outputs/train/runs/latest` works from
any clone. Everything that lists runs walks folders without following links (Path.rglob) or
drops duplicates by their resolved path, so a link never counts a run twice.
"""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path
from typing import Any

from emotion.errors import counted
from emotion.rundir import fresh_name

LATEST = "latest"
# The folders that hold runs and sweeps (emotion/conf/hydra/default.yaml), where `latest` goes.
HOMES = ("runs", "multiruns")

log = logging.getLogger(__name__)


def shown(path: Path) -> str:
    """`path` as the user would type it: relative to the working directory when under it,
    quoted for a shell only where it needs to be."""
    absolute = path.absolute()
    try:
        text = str(absolute.relative_to(Path.cwd().absolute()))
    except ValueError:
        text = str(absolute)
    return shlex.quote(text)


def point_latest(target: Path) -> Path | None:
    """Point `<target's folder>/latest` at `target` (a relative link, swapped in by one
    rename so no reader sees it missing); a real file or folder named `latest` is left
    alone. Returns the link, or None when none could be made."""
    link = target.parent / LATEST
    if target.parent.name not in HOMES or target.name == LATEST:
        return None  # a run placed elsewhere (paths.run_dir=...): its folder is the user's
    if os.path.lexists(link) and not link.is_symlink():
        return None
    temporary = fresh_name(link, ".link")
    try:
        os.symlink(target.name, temporary, target_is_directory=True)
        os.replace(temporary, link)
    except OSError as error:  # a file system without links: the run itself is unaffected
        temporary.unlink(missing_ok=True)
        log.debug("no %s link beside %s: %s", LATEST, target, error)
        return None
    return link


def next_steps(run_dir: Path, sweep_dir: Path | None = None) -> list[str]:
    """The run folder and the commands that use it, filled in, one per line."""
    run = shown(run_dir)
    lines = [
        f"run folder: {run}",
        "next:",
        f"  emotion-eval {run}        # its report on the test split",
        f"  emotion-serve {run}       # the live page at http://127.0.0.1:8000",
        f"  tensorboard --logdir {run}",
    ]
    if sweep_dir is not None:
        lines.append(f"  emotion-summary {shown(sweep_dir)}   # the sweep's table, once it ends")
    return lines


def finished_notice(earlier: dict[str, Any], max_epochs: int | None) -> str:
    """One line for a rerun that meets a finished run: what it did, what this run does now,
    and how to start fresh instead."""
    epochs = earlier.get("epochs")
    test = (earlier.get("test") or {}).get("test/bal_acc")
    did = counted(int(epochs), "epoch") if epochs is not None else "trained"
    if test is not None:
        did += f", test/bal_acc={float(test):.4f}"
    if max_epochs is not None and epochs is not None and max_epochs > int(epochs):
        now = f"extending it to trainer.max_epochs={max_epochs}"
    else:
        now = "resuming it only retests its checkpoint"
    return (
        f"this run already finished ({did}): {now}; to start fresh, add overwrite=true "
        "or give it another run_name (e.g. run_name=fresh)"
    )
