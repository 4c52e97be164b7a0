"""The metrics.json files under a sweep, read once for the table and for the comparisons.

A file that cannot be read (truncated by a full disk or a copy cut short, not JSON, not a JSON
object, unreadable) is skipped with one warning that counts and names each, rather than
ending the summary: the other runs are still worth a table, and the warning says which runs
the means leave out (the table's `n` column shows it per group too). So are the runs that
have not finished: a job folder without metrics.json (stopped, failed, or not done yet), or a
run still training (its `.lock` held; a metrics.json there is an earlier finish, about to be
replaced); they are counted, named, and left out of every figure.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotion.inference.unfinished import TRAINING, run_state
from emotion.rundir import CHECKPOINT_DIR, HYDRA_CONFIG, LOCK_FILE, METRICS_FILE


@dataclass
class MetricsFiles:
    """The readable metrics.json under one folder, and the ones skipped with why."""

    found: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    # Run folders whose training has not finished: (folder, state, why).
    unfinished: list[tuple[Path, str, str]] = field(default_factory=list)

    def unfinished_record(self, finished: int) -> dict[str, Any]:
        """The unfinished runs as the JSON and Markdown outputs give them."""
        states: dict[str, int] = {}
        for _, state, _ in self.unfinished:
            states[state] = states.get(state, 0) + 1
        return {
            "count": len(self.unfinished),
            "of_runs": finished + len(self.unfinished),
            "states": states,
            "runs": [{"run": str(run), "state": state} for run, state, _ in self.unfinished],
        }

    def unfinished_line(self, finished: int) -> str:
        """One line saying how many runs are left out as unfinished; empty when none is."""
        record = self.unfinished_record(finished)
        if not record["count"]:
            return ""
        states = ", ".join(f"{count} {state}" for state, count in record["states"].items())
        return (
            f"{record['count']} of {record['of_runs']} run(s) have not finished ({states}), "
            "left out of every figure"
        )


def read_metrics_file(path: Path) -> dict[str, Any]:
    """One metrics.json as a dict; ValueError (with why) when it is not one."""
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text ({error.reason} at byte {error.start})") from error
    except OSError as error:
        raise ValueError(f"cannot be read ({error.strerror or error})") from error
    try:
        result = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"truncated or not JSON ({error})") from error
    if not isinstance(result, dict):
        raise ValueError(f"a JSON {type(result).__name__}, not an object")
    return result


def metrics_files(root: Path) -> MetricsFiles:
    """Every metrics.json under `root`, sorted by path, but those in an emotion-eval's
    temporary folder (`*.partial`: not published yet, or left by a killed run); a warning
    names the skipped ones."""
    files = MetricsFiles()
    files.unfinished = unfinished_runs(root)
    training = {run for run, state, _ in files.unfinished if state == TRAINING}
    for path in sorted(root.rglob(METRICS_FILE)):
        if any(part.endswith(".partial") for part in path.relative_to(root).parts[:-1]):
            continue
        if path.parent in training:
            continue
        try:
            files.found.append((path, read_metrics_file(path)))
        except ValueError as error:
            files.skipped.append((path, str(error)))
    if files.skipped:
        total = len(files.found) + len(files.skipped)
        named = "; ".join(f"{path}: {why}" for path, why in files.skipped)
        print(
            f"warning: skipped {len(files.skipped)} of {total} {METRICS_FILE} under {root} "
            f"that cannot be read, left out of every figure: {named}",
            file=sys.stderr,
        )
    if files.unfinished:
        named = "; ".join(f"{run}: {state} ({why})" for run, state, why in files.unfinished)
        print(
            f"warning: {len(files.unfinished)} run(s) under {root} have not finished, left "
            f"out of every figure: {named}",
            file=sys.stderr,
        )
    return files


def unfinished_runs(root: Path) -> list[tuple[Path, str, str]]:
    """Every run folder under `root` (or `root` itself) whose training has not finished:
    a folder emotion-train made (its .hydra config, checkpoints or lock) without a finished
    metrics.json, or with its lock held."""
    marks = (HYDRA_CONFIG.parts[0], CHECKPOINT_DIR, LOCK_FILE)
    folders = {path.parent for mark in marks for path in root.rglob(mark)}
    found = []
    for folder in sorted(folders):
        if any(part.endswith(".partial") for part in folder.relative_to(root).parts):
            continue
        state = run_state(folder)
        if state is not None:
            found.append((folder, *state))
    return found
