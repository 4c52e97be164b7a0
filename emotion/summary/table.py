"""A sweep's metrics.json files as one table: runs grouped by the settings that vary, mean ±
std over seeds or folds (`--over`), sorted by the chosen metric."""

from __future__ import annotations

import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError
from emotion.rundir import METRICS_FILE
from emotion.summary.files import metrics_files

IGNORED_PREFIXES = (
    "paths.",
    "hydra.",
    "run_name",
    "sweep_name",
    "resume",
    "overwrite",
    "ckpt_path",
    "progress_bar",
    "callbacks.",
    "logger.",
)
DEFAULT_EXTRA = (
    "test/acc",
    "test/bal_acc",
    "test/f1_macro",
    "test/recall_anxious",
    "test/precision_neutral",
)


@dataclass
class Group:
    settings: dict[str, Any]
    values: list[float] = field(default_factory=list)
    extra: dict[str, list[float]] = field(default_factory=dict)
    runs: list[str] = field(default_factory=list)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values)

    @property
    def std(self) -> float:
        return statistics.stdev(self.values) if len(self.values) > 1 else 0.0


def flatten(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{name}."))
        else:
            flat[name] = json.dumps(value) if isinstance(value, list) else value
    return flat


def metric_value(result: dict[str, Any], metric: str) -> float | None:
    stage = metric.split("/")[0]
    value = result.get(stage, {}).get(metric)
    return None if value is None else float(value)


def load_runs(root: Path) -> list[tuple[Path, dict[str, Any]]]:
    if not root.exists():
        raise EmotionError(f"{root} does not exist", "pass a run or multirun directory")
    runs = []
    evaluations = 0
    files = metrics_files(root)
    for path, result in files.found:
        if "config" not in result:  # emotion-eval's output (eval/, eval-ensemble/): not a run
            evaluations += 1
            continue
        runs.append((path.parent, result))
    if evaluations:
        print(f"left out {evaluations} emotion-eval outputs under {root}", file=sys.stderr)
    if not runs and files.skipped:
        raise EmotionError(
            f"no readable {METRICS_FILE} under {root}: the {len(files.skipped)} there cannot be "
            "read (named above)",
            "rerun or re-evaluate those runs, or restore their metrics.json",
        )
    if not runs:
        raise EmotionError(
            f"no {METRICS_FILE} under {root}",
            "a run writes it when it finishes; check that the sweep has completed",
        )
    return runs


def summarise(
    runs: list[tuple[Path, dict[str, Any]]],
    metric: str,
    over: tuple[str, ...] = ("seed", "data.fold", "data.seed"),
    extra: tuple[str, ...] = DEFAULT_EXTRA,
) -> tuple[list[str], list[Group]]:
    """Group runs by the settings that vary (except `over`) and collect the metric per group."""
    flat = [
        {
            k: v
            for k, v in flatten(result.get("config", {})).items()
            if not k.startswith(IGNORED_PREFIXES)
        }
        for _, result in runs
    ]
    keys = sorted({key for settings in flat for key in settings})
    varying = [
        key
        for key in keys
        if key not in over and len({json.dumps(s.get(key), default=str) for s in flat}) > 1
    ]
    groups: dict[str, Group] = {}
    for (run_dir, result), settings in zip(runs, flat, strict=True):
        value = metric_value(result, metric)
        if value is None:
            raise EmotionError(
                f"{run_dir / METRICS_FILE} has no metric {metric!r}",
                f"choose one of {sorted(result.get('val', {})) + sorted(result.get('test', {}))}",
            )
        chosen = {key: settings.get(key) for key in varying}
        group = groups.setdefault(json.dumps(chosen, default=str), Group(chosen))
        group.values.append(value)
        group.runs.append(str(run_dir))
        for name in extra:
            other = metric_value(result, name)
            if other is not None and name != metric:
                group.extra.setdefault(name, []).append(other)
    return varying, list(groups.values())


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    mean = statistics.fmean(values)
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.4f} ± {std:.4f}"


def render(varying: list[str], groups: list[Group], metric: str, fmt: str, descending: bool) -> str:
    ordered = sorted(groups, key=lambda g: (math.isnan(g.mean), g.mean), reverse=descending)
    extras = sorted({name for group in groups for name in group.extra})
    if fmt == "json":
        return json.dumps(
            {
                "metric": metric,
                "group_by": varying,
                "groups": [
                    {
                        "settings": g.settings,
                        "n": len(g.values),
                        "mean": g.mean,
                        "std": g.std,
                        "values": g.values,
                        "extra": {
                            n: {"mean": statistics.fmean(v), "values": v}
                            for n, v in g.extra.items()
                        },
                        "runs": g.runs,
                    }
                    for g in ordered
                ],
            },
            indent=2,
        )
    header = [*varying, "n", f"{metric} (mean ± std)", *extras]
    rows = [
        [
            *(str(g.settings[k]) for k in varying),
            str(len(g.values)),
            _cell(g.values),
            *(_cell(g.extra.get(n, [])) for n in extras),
        ]
        for g in ordered
    ]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)
