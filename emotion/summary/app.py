"""`emotion-summary`: a sweep's runs as one table, or recipes compared fold by fold.

    emotion-summary outputs/train/multiruns/sweep --metric test/bal_acc
    emotion-summary outputs/train/multiruns/cv --format markdown --out cv.md
    emotion-summary outputs/train/multiruns/cv --per-fold --format markdown
    emotion-summary runs/seed_reference runs/procrustes --compare --baseline seed_reference \\
        --format markdown --out table.md --json table.json

Runs are grouped by every setting that varies across the sweep, except the ones averaged over
(`--over`, default seed and data.fold); groups are sorted by the chosen metric
(`emotion.summary.table`). `--per-fold` and `--compare` treat each directory given as one
recipe: mean ± std and per-fold values of balanced accuracy, accuracy, macro-F1, anxious
recall and neutral precision, and with `--baseline` paired per-fold differences to that
recipe (`emotion.summary.compare`).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from emotion.errors import counted, exit_on_user_error
from emotion.summary.compare import compare, load_recipe, parse_recipe_arg, render_markdown
from emotion.summary.files import MetricsFiles
from emotion.summary.table import load_sweep, render, summarise


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
    sweeps = [load_sweep(Path(root)) for root in args.roots]
    runs = [run for sweep in sweeps for run in sweep.runs]
    files = MetricsFiles(unfinished=[run for sweep in sweeps for run in sweep.files.unfinished])
    varying, groups = summarise(runs, args.metric, tuple(filter(None, args.over.split(","))))
    text = render(
        varying, groups, args.metric, args.format, descending=not args.ascending, files=files
    )
    unfinished = files.unfinished_line(len(runs))
    print(
        f"{counted(len(runs), 'run')} in {counted(len(groups), 'group')} under {args.roots}"
        + (f"; {unfinished}" if unfinished else ""),
        file=sys.stderr,
    )
    print(text)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")


def compare_main(args: argparse.Namespace) -> None:
    """Recipes side by side (Markdown or JSON), optionally paired against a baseline."""
    recipes = [load_recipe(*parse_recipe_arg(root)) for root in args.roots]
    table = compare(recipes, args.baseline)
    payload = json.dumps(table, indent=2, default=str)
    text = payload if args.format == "json" else render_markdown(table, args.metric)
    runs = sum(len(recipe.runs) for recipe in recipes)
    print(f"{counted(len(recipes), 'recipe')}, {counted(runs, 'run')}", file=sys.stderr)
    print(text)
    for path, content in ((args.out, text), (args.json, payload)):
        if path:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(content + "\n")


if __name__ == "__main__":
    main()
