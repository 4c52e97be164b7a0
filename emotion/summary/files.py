"""The metrics.json files under a sweep, read once for the table and for the comparisons.

A file that cannot be read (truncated by a full disk or a copy cut short, not JSON, not a JSON
object, unreadable) is skipped with one warning that counts and names each, rather than
ending the summary: the other runs are still worth a table, and the warning says which runs
the means leave out (the table's `n` column shows it per group too).
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotion.rundir import METRICS_FILE


@dataclass
class MetricsFiles:
    """The readable metrics.json under one folder, and the ones skipped with why."""

    found: list[tuple[Path, dict[str, Any]]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


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
    for path in sorted(root.rglob(METRICS_FILE)):
        if any(part.endswith(".partial") for part in path.relative_to(root).parts[:-1]):
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
    return files
