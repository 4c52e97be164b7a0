"""One README table from the comparison JSONs that `emotion/bench/recipes.sh` writes.

    python -m emotion.bench.recipes_table "synthetic=outputs/recipes/synthetic_e5_f3_s1-2-3.json" \
        "real sample=outputs/recipes/real_sample_e200_f3_s1-2-3.json" --out table.md

Rows are recipes, and for each data set: balanced accuracy (mean ± std over folds x seeds),
the paired difference to the baseline with its verdict, and anxious recall with its paired
difference. A second table gives the paired balanced-accuracy difference of every fold.
Every cell is copied from the JSON, which `emotion-summary --compare --json` wrote.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

BAL_ACC = "test/bal_acc"
RECALL = "test/recall_anxious"


def _load(argument: str) -> tuple[str, dict[str, Any]]:
    name, _, path = argument.partition("=")
    return name, json.loads(Path(path).read_text())


def _mean_std(stats: dict[str, Any] | None) -> str:
    return "-" if not stats else f"{stats['mean']:.3f} ± {stats['std']:.3f}"


def _paired(row: dict[str, Any], metric: str, verdict: bool) -> str:
    paired = row.get("paired_vs_baseline", {}).get(metric)
    if not paired:
        return "(baseline)" if "paired_vs_baseline" not in row else "-"
    text = f"{paired['mean']:+.3f} ± {paired['std']:.3f} (n={paired['n']})"
    return f"{text}, {paired['verdict']}" if verdict else text


def _recipes(tables: list[tuple[str, dict[str, Any]]]) -> list[str]:
    names: list[str] = []
    for _, table in tables:
        names += [row["recipe"] for row in table["rows"] if row["recipe"] not in names]
    return names


def render(tables: list[tuple[str, dict[str, Any]]]) -> str:
    header = ["recipe"]
    for name, table in tables:
        header += [
            f"{name}: bal_acc",
            f"Δ vs {table['baseline']}",
            "anxious recall",
            "Δ recall",
        ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    rows = {name: {row["recipe"]: row for row in table["rows"]} for name, table in tables}
    for recipe in _recipes(tables):
        cells = [recipe]
        for name, _ in tables:
            row = rows[name].get(recipe)
            if row is None:
                cells += ["not run"] + ["-"] * 3
                continue
            cells += [
                _mean_std(row["metrics"].get(BAL_ACC)),
                _paired(row, BAL_ACC, verdict=True),
                _mean_std(row["metrics"].get(RECALL)),
                _paired(row, RECALL, verdict=False),
            ]
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "Paired difference in balanced accuracy, per fold (mean over seeds):", ""]
    for name, table in tables:
        folds = sorted(
            {int(fold) for row in table["rows"] for fold in row["per_fold"].get(BAL_ACC, {})}
        )
        lines += [
            f"| {name} | " + " | ".join(f"fold {fold}" for fold in folds) + " |",
            "|" + "---|" * (len(folds) + 1),
        ]
        for row in table["rows"]:
            paired = row.get("paired_vs_baseline", {}).get(BAL_ACC)
            if paired:
                values = {int(fold): value for fold, value in paired["per_fold"].items()}
                cells = [f"{values[fold]:+.3f}" if fold in values else "-" for fold in folds]
                lines.append(f"| {row['recipe']} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tables", nargs="+", help="NAME=comparison.json, one per data set")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    text = render([_load(argument) for argument in args.tables])
    if args.out:
        args.out.write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
