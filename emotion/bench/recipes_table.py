"""One docs/results.md table from the comparison JSONs that `emotion/bench/recipes.sh` writes.

    python -m emotion.bench.recipes_table "synthetic=outputs/recipes/synthetic_e5_f3_s1-2-3.json" \
        "real sample=outputs/recipes/real_sample_e200_f3_s1-2-3.json" --out table.md

One table per data set. Rows are recipes: balanced accuracy as the mean ± std over runs (folds
x seeds) with the paired difference to the baseline and its verdict; pooled balanced accuracy
(each seed's folds' test confusion matrices summed, then mean ± std over seeds) with its
paired difference; anxious recall likewise. The paired balanced-accuracy difference carries its
standard error (the verdict: within noise when |Δ| < 2 of them) and the folds whose mean over
seeds it beats: "keep the default unless a change wins on every fold" (issue 26) reads that
column. Then the paired balanced-accuracy difference of every fold. Every cell is copied from
(or, for the folds, counted in) the JSON, which `emotion-summary --compare --json` wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

BAL_ACC = "test/bal_acc"
RECALL = "test/recall_anxious"


def _load(argument: str) -> tuple[str, dict[str, Any]] | None:
    name, _, path = argument.partition("=")
    return (name, json.loads(Path(path).read_text())) if Path(path).is_file() else None


def _mean_std(stats: dict[str, Any] | None) -> str:
    return "-" if not stats else f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _paired(row: dict[str, Any], metric: str, verdict: bool) -> str:
    paired = row.get("paired_vs_baseline", {}).get(metric)
    if not paired:
        return "(baseline)" if "paired_vs_baseline" not in row else "-"
    text = f"{paired['mean']:+.3f} ± {paired['std']:.3f} (n={paired['n']})"
    return f"{text}, {paired['verdict']}" if verdict else text


def _standard_error(row: dict[str, Any]) -> str:
    paired = row.get("paired_vs_baseline", {}).get(BAL_ACC)
    if "paired_vs_baseline" not in row:
        return "(baseline)"
    return "-" if not paired or paired["n"] < 2 else f"{paired['standard_error']:.3f}"


def _every_fold(row: dict[str, Any], folds: list[int]) -> str:
    """How many of the table's folds the recipe's mean over seeds beats the baseline on: a
    change wins only where it is better on every fold, not just on average."""
    if "paired_vs_baseline" not in row:
        return "(baseline)"
    paired = row["paired_vs_baseline"].get(BAL_ACC)
    if not paired or len(folds) < 2:
        return "-"
    better = sum(paired["per_fold"].get(str(fold), 0.0) > 0 for fold in folds)
    return f"{better}/{len(folds)}" + (", wins on every fold" if better == len(folds) else "")


def _pooled(row: dict[str, Any], name: str) -> str:
    stats = row.get("pooled", {}).get(name)
    return "-" if not stats or not stats.get("n") else f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _pooled_paired(row: dict[str, Any]) -> str:
    stats = row.get("pooled", {}).get("paired_bal_acc")
    if "paired_vs_baseline" not in row:
        return "(baseline)"
    return "-" if not stats or not stats.get("n") else f"{stats['mean']:+.3f} (n={stats['n']})"


def data_set_table(name: str, table: dict[str, Any]) -> list[str]:
    """One data set: per recipe, the run mean and the pooled figures, each with its paired
    difference to the baseline; then the paired difference of every fold."""
    folds = sorted(
        {int(fold) for row in table["rows"] for fold in row["per_fold"].get(BAL_ACC, {})}
    )
    header = [
        "recipe",
        "bal_acc (runs)",
        f"Δ vs {table['baseline']} (paired)",
        "SE of Δ",
        "folds better",
        "pooled bal_acc",
        "Δ pooled",
        "anxious recall (runs)",
        "Δ recall",
        "pooled anxious recall",
    ]
    lines = [f"**{name}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in table["rows"]:
        cells = [
            row["recipe"],
            _mean_std(row["metrics"].get(BAL_ACC)),
            _paired(row, BAL_ACC, verdict=True),
            _standard_error(row),
            _every_fold(row, folds),
            _pooled(row, "bal_acc"),
            _pooled_paired(row),
            _mean_std(row["metrics"].get(RECALL)),
            _paired(row, RECALL, verdict=False),
            _pooled(row, "recall_anxious"),
        ]
        lines.append("| " + " | ".join(cells) + " |")
    if len(folds) > 1:
        lines += ["", f"{name}: paired difference in balanced accuracy per fold (mean over seeds)"]
        lines += ["", "| recipe | " + " | ".join(f"fold {fold}" for fold in folds) + " |"]
        lines.append("|" + "---|" * (len(folds) + 1))
        for row in table["rows"]:
            paired = row.get("paired_vs_baseline", {}).get(BAL_ACC)
            if paired:
                values = {int(fold): value for fold, value in paired["per_fold"].items()}
                cells = [f"{values[fold]:+.3f}" if fold in values else "-" for fold in folds]
                lines.append(f"| {row['recipe']} | " + " | ".join(cells) + " |")
    return lines + [""]


def render(tables: list[tuple[str, dict[str, Any]]]) -> str:
    return "\n".join(line for name, table in tables for line in data_set_table(name, table))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="+", help="NAME=comparison.json, one per data set")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = render([table for table in map(_load, args.tables) if table is not None])
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
