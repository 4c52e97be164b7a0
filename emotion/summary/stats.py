"""Mean ± std of a metric over runs, where a run's value may be NaN (a loss that diverged, a
class no resample held): such values are counted and shown, never averaged in. The
`statistics` module itself raises AttributeError on a NaN or an infinity in stdev."""

from __future__ import annotations

import math
import statistics
from collections import Counter
from typing import Any


def mean_std(values: list[float]) -> dict[str, Any]:
    """`n` finite values, their mean and std (0 for one, NaN for none), and `not_finite`:
    how many of each value left out ({"nan": 2}), empty when none was."""
    finite = [value for value in values if math.isfinite(value)]
    left_out = Counter(str(value) for value in values if not math.isfinite(value))
    if not finite:
        return {"n": 0, "mean": math.nan, "std": math.nan, "not_finite": dict(left_out)}
    std = statistics.stdev(finite) if len(finite) > 1 else 0.0
    return {
        "n": len(finite),
        "mean": statistics.fmean(finite),
        "std": std,
        "not_finite": dict(left_out),
    }


def left_out_text(stats: dict[str, Any]) -> str:
    """` (1 nan)`: what the mean leaves out, for a table cell; empty when nothing."""
    counts = stats.get("not_finite") or {}
    return f" ({', '.join(f'{count} {name}' for name, count in counts.items())})" if counts else ""


def cell(stats: dict[str, Any], signed: bool = False) -> str:
    """`0.8000 ± 0.0100`, with what was left out; `nan` alone when only that was there."""
    if not stats["n"]:
        return left_out_text(stats).strip(" ()") or "-"
    mean = f"{stats['mean']:+.4f}" if signed else f"{stats['mean']:.4f}"
    return f"{mean} ± {stats['std']:.4f}{left_out_text(stats)}"
