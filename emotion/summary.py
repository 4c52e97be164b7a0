"""`emotion-summary`: a sweep's metrics.json files as one table, mean ± std over seeds or folds.

    emotion-summary outputs/train/multiruns/sweep --metric test/bal_acc
    emotion-summary outputs/train/multiruns/cv --format markdown --out cv.md
    emotion-summary outputs/train/multiruns/cv --per-fold --format markdown
    emotion-summary runs/seed_reference runs/procrustes --compare --baseline seed_reference \
        --format markdown --out table.md --json table.json

Runs are grouped by every setting that varies across the sweep, except the ones averaged over
(`--over`, default seed and data.fold); groups are sorted by the chosen metric.

`--per-fold` and `--compare` (emotion/compare.py) treat each directory given as one recipe:
mean ± std and per-fold values of balanced accuracy, accuracy, macro-F1, anxious recall and
neutral precision, and with `--baseline` paired per-fold differences to that recipe.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emotion.errors import EmotionError, exit_on_user_error
from emotion.runs import METRICS_FILE

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
    for path in sorted(root.rglob(METRICS_FILE)):
        try:
            result = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            print(f"skipping unreadable {path}: {error}", file=sys.stderr)
            continue
        if "config" not in result:  # emotion-eval's output (eval/, eval-ensemble/): not a run
            evaluations += 1
            continue
        runs.append((path.parent, result))
    if evaluations:
        print(f"left out {evaluations} emotion-eval outputs under {root}", file=sys.stderr)
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


@exit_on_user_error
def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="emotion-summary", description=__doc__.splitlines()[0])
    parser.add_argument(
        "roots",
        nargs="+",
        help="multirun (or run) directories; with --compare each is a recipe (NAME=DIR names it)",
    )
    parser.add_argument("--metric", default="test/bal_acc", help="e.g. val/bal_acc, test/auroc")
    parser.add_argument(
        "--over",
        default="seed,data.fold,data.seed",
        help="settings averaged over (comma-separated)",
    )
    parser.add_argument("--format", choices=("table", "markdown", "json"), default="table")
    parser.add_argument("--ascending", action="store_true", help="smallest first (losses)")
    parser.add_argument("--out", type=Path, help="also write the output to this file")
    parser.add_argument("--compare", action="store_true", help="one recipe per directory")
    parser.add_argument("--per-fold", action="store_true", help="per-fold values per directory")
    parser.add_argument("--baseline", help="--compare: paired differences against this recipe")
    parser.add_argument("--json", type=Path, help="--compare/--per-fold: also write JSON here")
    args = parser.parse_args(argv)
    if args.compare or args.per_fold or args.baseline:
        compare_main(args)
        return
    runs = [run for root in args.roots for run in load_runs(Path(root))]
    varying, groups = summarise(runs, args.metric, tuple(filter(None, args.over.split(","))))
    text = render(varying, groups, args.metric, args.format, descending=not args.ascending)
    print(f"{len(runs)} runs in {len(groups)} groups under {args.roots}", file=sys.stderr)
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def compare_main(args: argparse.Namespace) -> None:
    """Recipes side by side (Markdown or JSON), optionally paired against a baseline."""
    from emotion.compare import compare, load_recipe, parse_recipe_arg, render_markdown

    recipes = [load_recipe(*parse_recipe_arg(root)) for root in args.roots]
    table = compare(recipes, args.baseline)
    payload = json.dumps(table, indent=2, default=str)
    text = payload if args.format == "json" else render_markdown(table, args.metric)
    print(f"{len(recipes)} recipes, {sum(len(r.runs) for r in recipes)} runs", file=sys.stderr)
    print(text)
    for path, content in ((args.out, text), (args.json, payload)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content + "\n")


if __name__ == "__main__":
    main()
