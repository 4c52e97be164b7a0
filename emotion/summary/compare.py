"""Cross-validated recipes side by side: per-fold values and paired differences to a baseline.

A recipe is a set of runs (one sweep directory: folds x seeds). Folds differ in difficulty far
more than recipes differ from each other, so comparing two recipes' means hides a real
difference in fold noise. Pairing each run with the baseline run of the SAME fold and seed
(same people, same initialisation seed) and averaging the differences removes that shared
noise. `within noise` means |mean difference| < 2 standard errors of the paired differences
(runs of one fold share their test people, so this is optimistic, not a formal test).

Pooled figures answer "what does the recipe score over all the people?": per seed, the test
confusion matrices of every fold are summed (each person scored once, by the fold that held
them out) and balanced accuracy and anxious recall are read off the sum; then mean ± std over
seeds, and paired differences seed by seed. That is how the reference re-implementation
(`reference_recipe.py cv`) reports, so the two compare like with like.

A recipe directory may instead hold evaluations (`emotion-eval` outputs). An ensemble of a
fold's seeds is one row per fold, paired with the MEAN of the baseline's runs of that fold,
i.e. the ensemble against what one model of that fold scores on average; one model scored on
another store (transfer) pairs with the baseline's model of the same seed.
"""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from emotion.errors import EmotionError
from emotion.rundir import METRICS_FILE
from emotion.summary.files import metrics_files
from emotion.summary.stats import cell, mean_std

REPORTED = (
    "test/bal_acc",
    "test/acc",
    "test/f1_macro",
    "test/recall_anxious",
    "test/precision_neutral",
)
# Runs pair up when these match: the same subject folds, fold and seed.
PAIR_KEYS = ("data.num_folds", "data.split_seed", "data.fold", "seed")


@dataclass
class Run:
    key: tuple[Any, ...]
    fold: int
    metrics: dict[str, float]
    path: str
    confusion: list[list[int]] | None = None  # test: rows true class, columns predicted
    class_names: list[str] = field(default_factory=list)


@dataclass
class Recipe:
    name: str
    runs: list[Run] = field(default_factory=list)
    # The runs left out as unfinished (MetricsFiles.unfinished_record).
    unfinished: dict[str, Any] = field(default_factory=dict)

    def values(self, metric: str) -> list[float]:
        return [run.metrics[metric] for run in self.runs if metric in run.metrics]

    def pooled(self) -> dict[Any, dict[str, float]]:
        """Per seed (the pair key without its fold): balanced accuracy and anxious recall of
        the folds' summed test confusion matrices."""
        summed: dict[Any, np.ndarray] = {}
        names: list[str] = []
        for run in self.runs:
            if run.confusion is None:
                continue
            seed_key = (*run.key[:2], run.key[3])
            matrix = np.asarray(run.confusion, dtype=np.int64)
            summed[seed_key] = summed.get(seed_key, 0) + matrix
            names = run.class_names or names
        return {key: pooled_metrics(matrix, names) for key, matrix in summed.items()}

    def per_fold(self, metric: str) -> dict[int, float]:
        """Mean over seeds of each fold."""
        folds: dict[int, list[float]] = {}
        for run in self.runs:
            if metric in run.metrics:
                folds.setdefault(run.fold, []).append(run.metrics[metric])
        return {fold: statistics.fmean(values) for fold, values in sorted(folds.items())}


def pooled_metrics(confusion: np.ndarray, class_names: list[str]) -> dict[str, float]:
    """Balanced accuracy (mean recall over classes with rows) and per-class recall."""
    totals = confusion.sum(axis=1)
    recall = np.divide(np.diag(confusion), totals, out=np.zeros(len(totals)), where=totals > 0)
    values = {"bal_acc": float(recall[totals > 0].mean())}
    values |= {f"recall_{name}": float(r) for name, r in zip(class_names, recall, strict=True)}
    return values


def _select(config: dict[str, Any], dotted: str) -> Any:
    value: Any = config
    for part in dotted.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def load_recipe(name: str, root: Path) -> Recipe:
    """Every finished training run (metrics.json) under `root`; or, where there is none,
    every ensemble evaluation. Evaluations inside run directories are never extra runs."""
    files = metrics_files(root)
    results = files.found
    runs = [_training_run(path, result) for path, result in results if "config" in result]
    if not runs:  # emotion-eval outputs: ensembles of a fold, or single models scored elsewhere
        runs = [_evaluation_run(path, result) for path, result in results if "metrics" in result]
    if not runs:
        raise EmotionError(
            f"no training run or ensemble evaluation ({METRICS_FILE}) under {root}"
            + (
                f" that can be read ({len(files.skipped)} cannot, named above)"
                if files.skipped
                else ""
            ),
            "run the sweep first, or check the path",
        )
    return Recipe(name, runs, files.unfinished_record(len(runs)))


def _training_run(path: Path, result: dict[str, Any]) -> Run:
    config = result["config"]
    metrics = {
        key: float(value)
        for stage in ("val", "test")
        for key, value in result.get(stage, {}).items()
        if isinstance(value, (int, float))
    }
    key = tuple(_select(config, dotted) for dotted in PAIR_KEYS)
    fold = _select(config, "data.fold")
    confusion = result.get("test_confusion_matrix")
    names = list(result.get("class_names") or [])
    return Run(key, int(fold or 0), metrics, str(path.parent), confusion, names)


def _evaluation_run(path: Path, result: dict[str, Any]) -> Run:
    """An emotion-eval output: the pair key of its fold and, for one model, its seed (an
    ensemble over a fold's seeds has none)."""
    config = {"data": result.get("data_settings", {}), "seed": result.get("seed")}
    metrics = {
        key: float(value)
        for key, value in result.get("metrics", {}).items()
        if isinstance(value, (int, float))
    }
    key = tuple(_select(config, dotted) for dotted in PAIR_KEYS)
    fold = _select(config, "data.fold")
    confusion = (result.get("confusion_matrix") or {}).get("counts")
    names = list(result.get("class_names") or [])
    return Run(key, int(fold or 0), metrics, str(path.parent), confusion, names)


def parse_recipe_arg(text: str) -> tuple[str, Path]:
    """`name=path` or a path, named after its last directory."""
    if "=" in text and not Path(text).exists():
        name, path = text.split("=", 1)
        return name, Path(path)
    return Path(text).name, Path(text)


def paired_difference(recipe: Recipe, baseline: Recipe, metric: str) -> dict[str, Any]:
    """Recipe minus baseline over runs of the same fold and seed, with per-fold means."""
    base = {run.key: run.metrics[metric] for run in baseline.runs if metric in run.metrics}
    fold_means: dict[tuple[Any, ...], list[float]] = {}
    for run in baseline.runs:
        if metric in run.metrics:
            fold_means.setdefault(run.key[:-1], []).append(run.metrics[metric])
    for fold_key, values in fold_means.items():
        base.setdefault((*fold_key, None), statistics.fmean(values))  # for seedless ensembles
    pairs = [
        (run.fold, run.metrics[metric] - base[run.key])
        for run in recipe.runs
        if metric in run.metrics and run.key in base
    ]
    differences = [difference for _, difference in pairs]
    summary = mean_std(differences)
    per_fold: dict[int, list[float]] = {}
    for fold, difference in pairs:
        per_fold.setdefault(fold, []).append(difference)
    summary["per_fold"] = {f: statistics.fmean(v) for f, v in sorted(per_fold.items())}
    summary["values"] = differences
    standard_error = summary["std"] / math.sqrt(summary["n"]) if summary["n"] > 1 else math.inf
    summary["standard_error"] = standard_error
    if summary["n"] == 0:
        summary["verdict"] = "no pairs"
    elif abs(summary["mean"]) < 2 * standard_error:
        summary["verdict"] = "within noise"
    else:
        summary["verdict"] = "better" if summary["mean"] > 0 else "worse"
    return summary


def pooled_summary(recipe: Recipe, baseline: Recipe | None) -> dict[str, Any]:
    """Pooled balanced accuracy and anxious recall over seeds, and the paired difference to
    the baseline's pooled figures of the same seed."""
    mine = recipe.pooled()
    summary: dict[str, Any] = {
        name: mean_std([values[name] for values in mine.values() if name in values])
        for name in ("bal_acc", "recall_anxious")
    }
    if baseline is not None and baseline is not recipe:
        theirs = baseline.pooled()
        differences = [
            values["bal_acc"] - theirs[key]["bal_acc"]
            for key, values in mine.items()
            if key in theirs
        ]
        summary["paired_bal_acc"] = mean_std(differences)
    return summary


def compare(
    recipes: list[Recipe], baseline: str | None, metrics: tuple[str, ...] = REPORTED
) -> dict[str, Any]:
    """Everything the tables show, as plain data (this is the JSON output)."""
    names = [recipe.name for recipe in recipes]
    if baseline is not None and baseline not in names:
        raise EmotionError(f"baseline {baseline!r} is not among the recipes {names}")
    base = next((recipe for recipe in recipes if recipe.name == baseline), None)
    if base is not None:  # the baseline's row first, the others in the order given
        recipes = [base, *(recipe for recipe in recipes if recipe is not base)]
    present = [m for m in metrics if any(recipe.values(m) for recipe in recipes)]
    rows = []
    for recipe in recipes:
        row: dict[str, Any] = {
            "recipe": recipe.name,
            "runs": len(recipe.runs),
            "metrics": {m: mean_std(recipe.values(m)) for m in present},
            "per_fold": {m: recipe.per_fold(m) for m in present},
            "pooled": pooled_summary(recipe, base),
            "unfinished": recipe.unfinished,
        }
        if base is not None and recipe is not base:
            row["paired_vs_baseline"] = {m: paired_difference(recipe, base, m) for m in present}
        rows.append(row)
    return {"baseline": baseline, "metrics": present, "pair_keys": list(PAIR_KEYS), "rows": rows}


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(row) + " |" for row in rows]


def render_markdown(table: dict[str, Any], metric: str) -> str:
    """Summary (mean ± std, paired difference on `metric`), then per-fold values."""
    metrics = table["metrics"]
    short = [m.split("/", 1)[1] for m in metrics]
    baseline = table["baseline"]
    header = ["recipe", "runs", *short, "pooled bal_acc", "pooled recall_anxious"]
    if baseline:
        header += [f"Δ {metric.split('/', 1)[1]} vs {baseline} (paired)", "pairs", "verdict"]
    rows = []
    for row in table["rows"]:
        cells = [row["recipe"], str(row["runs"]), *(cell(row["metrics"][m]) for m in metrics)]
        pooled = row.get("pooled", {})
        cells += [cell(pooled.get(name, {"n": 0})) for name in ("bal_acc", "recall_anxious")]
        if baseline:
            paired = row.get("paired_vs_baseline", {}).get(metric)
            cells += (
                [cell(paired, signed=True), str(paired["n"]), paired["verdict"]]
                if paired
                else ["(baseline)", "-", "-"]
            )
        rows.append(cells)
    lines = _table(header, rows)
    for row in table["rows"]:
        if (row.get("unfinished") or {}).get("count"):
            left = row["unfinished"]
            lines.append(
                f"\nUnfinished: {row['recipe']}: {left['count']} of {left['of_runs']} "
                "run(s) have not finished, left out of every figure."
            )
    folds = sorted({int(f) for row in table["rows"] for f in row["per_fold"][metrics[0]]})
    lines += ["", "Per fold (mean over seeds):", ""]
    fold_rows = []
    for row in table["rows"]:
        for name, full in zip(short, metrics, strict=True):
            values = {int(k): v for k, v in row["per_fold"][full].items()}
            fold_rows.append(
                [row["recipe"], name, *(f"{values[f]:.4f}" if f in values else "-" for f in folds)]
            )
        paired = row.get("paired_vs_baseline", {}).get(metric)
        if paired:
            values = {int(k): v for k, v in paired["per_fold"].items()}
            fold_rows.append(
                [row["recipe"], f"Δ {metric.split('/', 1)[1]}"]
                + [f"{values[f]:+.4f}" if f in values else "-" for f in folds]
            )
    lines += _table(["recipe", "metric", *(f"fold {f}" for f in folds)], fold_rows)
    return "\n".join(lines)
