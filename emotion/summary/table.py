"""A sweep's metrics.json files as one table: runs grouped by the settings that vary, mean ±
std over seeds or folds (`--over`), sorted by the chosen metric."""

from __future__ import annotations

import json
import math
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError
from emotion.rundir import METRICS_FILE
from emotion.summary.files import MetricsFiles, metrics_files
from emotion.summary.stats import cell, mean_std

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
    def stats(self) -> dict[str, Any]:
        """Mean and std of the finite values, and the NaN values left out, counted."""
        return mean_std(self.values)

    @property
    def mean(self) -> float:
        return float(self.stats["mean"])

    @property
    def std(self) -> float:
        return float(self.stats["std"])


@dataclass
class Sweep:
    """The finished runs under a folder, and what its metrics files say of the others."""

    runs: list[tuple[Path, dict[str, Any]]]
    files: MetricsFiles


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
    """The finished runs under `root`: (run folder, its metrics.json)."""
    return load_sweep(root).runs


def load_sweep(root: Path) -> Sweep:
    """The finished runs under `root`, and the unfinished ones counted (`MetricsFiles`)."""
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
        unfinished = files.unfinished_line(0)
        raise EmotionError(
            f"no {METRICS_FILE} under {root}" + (f": {unfinished}" if unfinished else ""),
            "a run writes it when it finishes; check that the sweep has completed",
        )
    return Sweep(runs, files)


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
    return cell(mean_std(values)) if values else "-"


def render(
    varying: list[str],
    groups: list[Group],
    metric: str,
    fmt: str,
    descending: bool,
    files: MetricsFiles | None = None,
) -> str:
    """The groups as a table, Markdown or JSON, best first (groups without a finite value
    last); with `files`, what was left out as unfinished (a line, or the `unfinished` field)."""
    finite = [g for g in groups if not math.isnan(g.mean)]
    ordered = sorted(finite, key=lambda g: g.mean, reverse=descending)
    ordered += [g for g in groups if math.isnan(g.mean)]
    extras = sorted({name for group in groups for name in group.extra})
    files = files or MetricsFiles()
    finished = sum(len(g.runs) for g in groups)
    if fmt == "json":
        return json.dumps(
            {
                "metric": metric,
                "group_by": varying,
                "unfinished": files.unfinished_record(finished),
                "groups": [
                    {
                        "settings": g.settings,
                        "n": len(g.values),
                        "mean": g.mean,
                        "std": g.std,
                        "not_finite": g.stats["not_finite"],
                        "values": g.values,
                        "extra": {
                            n: {"mean": mean_std(v)["mean"], "values": v}
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
        note = files.unfinished_line(finished)
        return "\n".join(lines + ([f"\nUnfinished: {note}."] if note else []))
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
        for row in [header, *rows]
    ]
    lines.insert(1, "  ".join("-" * width for width in widths))
    note = files.unfinished_line(finished)
    return "\n".join(lines + ([f"unfinished: {note}"] if note else []))
