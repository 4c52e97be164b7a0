"""Recipe comparison: per-fold values and paired differences, on fabricated metrics.json files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emotion.summary.app import main
from emotion.summary.compare import compare, load_recipe, render_markdown
from tests.commands import emotion

METRICS = ("bal_acc", "acc", "f1_macro", "recall_anxious", "precision_neutral")


def _write(root: Path, fold: int, seed: int, value: float) -> None:
    run = root / f"fold{fold}_seed{seed}"
    run.mkdir(parents=True)
    config = {"seed": seed, "data": {"fold": fold, "num_folds": 2, "split_seed": 0}}
    test = {f"test/{name}": value + 0.01 * index for index, name in enumerate(METRICS)}
    payload = {"config": config, "val": {"val/bal_acc": value}, "test": test}
    (run / "metrics.json").write_text(json.dumps(payload))


# fold -> seed -> test/bal_acc; the candidate is +0.10, +0.20 on fold 0 and -0.10, 0.00 on fold 1
BASE = {0: {1: 0.60, 2: 0.70}, 1: {1: 0.80, 2: 0.90}}
CANDIDATE = {0: {1: 0.70, 2: 0.90}, 1: {1: 0.70, 2: 0.90}}


@pytest.fixture
def recipes(tmp_path: Path) -> tuple[Path, Path]:
    for name, values in (("base", BASE), ("candidate", CANDIDATE)):
        for fold, seeds in values.items():
            for seed, value in seeds.items():
                _write(tmp_path / name, fold, seed, value)
    return tmp_path / "base", tmp_path / "candidate"


def test_per_fold_values_and_paired_differences(recipes: tuple[Path, Path]) -> None:
    base, candidate = (load_recipe(path.name, path) for path in recipes)
    table = compare([base, candidate], baseline="base")
    base_row, candidate_row = table["rows"]
    assert base_row["per_fold"]["test/bal_acc"] == pytest.approx({0: 0.65, 1: 0.85})
    assert candidate_row["per_fold"]["test/bal_acc"] == pytest.approx({0: 0.80, 1: 0.80})
    assert candidate_row["metrics"]["test/bal_acc"]["mean"] == pytest.approx(0.80)
    assert candidate_row["per_fold"]["test/precision_neutral"][0] == pytest.approx(0.84)
    paired = candidate_row["paired_vs_baseline"]["test/bal_acc"]
    assert sorted(paired["values"]) == pytest.approx([-0.1, 0.0, 0.1, 0.2])
    assert paired["mean"] == pytest.approx(0.05)
    assert paired["std"] == pytest.approx(0.12909944)  # sample std of the four differences
    assert paired["per_fold"] == pytest.approx({0: 0.15, 1: -0.05})
    assert paired["n"] == 4 and paired["verdict"] == "within noise"
    assert "paired_vs_baseline" not in base_row
    markdown = render_markdown(table, "test/bal_acc")
    assert "| candidate | 4 | 0.8000 ± 0.1155 |" in markdown
    assert "| candidate | Δ bal_acc | +0.1500 | -0.0500 |" in markdown


def test_unpaired_runs_are_left_out(recipes: tuple[Path, Path], tmp_path: Path) -> None:
    _write(recipes[1], fold=1, seed=9, value=0.1)  # no baseline run with seed 9
    base, candidate = (load_recipe(path.name, path) for path in recipes)
    paired = compare([base, candidate], "base")["rows"][1]["paired_vs_baseline"]
    assert paired["test/bal_acc"]["n"] == 4


def test_cli_writes_markdown_and_json(recipes: tuple[Path, Path], tmp_path: Path) -> None:
    out, json_out = tmp_path / "t.md", tmp_path / "t.json"
    main(
        [
            *(str(path) for path in recipes),
            "--compare",
            "--baseline",
            "base",
            "--format",
            "markdown",
            "--out",
            str(out),
            "--json",
            str(json_out),
        ]
    )
    assert "within noise" in out.read_text()
    payload = json.loads(json_out.read_text())
    assert [row["recipe"] for row in payload["rows"]] == ["base", "candidate"]
    assert payload["metrics"] == [f"test/{name}" for name in METRICS]


def _write_ensemble_eval(root: Path, fold: int, value: float) -> None:
    """What `emotion-eval` writes for an ensemble of one fold's seeds."""
    folder = root / f"fold{fold}"
    folder.mkdir(parents=True)
    payload = {
        "ensemble": ["a.ckpt", "b.ckpt"],
        "data_settings": {"fold": fold, "num_folds": 2, "split_seed": 0},
        "metrics": {"test/bal_acc": value, "test/acc": value},
    }
    (folder / "metrics.json").write_text(json.dumps(payload))


def test_ensemble_evaluations_pair_with_the_fold_mean_of_the_baseline(
    recipes: tuple[Path, Path], tmp_path: Path
) -> None:
    for fold, value in ((0, 0.75), (1, 0.80)):
        _write_ensemble_eval(tmp_path / "ensemble", fold, value)
    # An evaluation inside a training run's folder is not an extra run of that recipe.
    _write_ensemble_eval(recipes[0] / "fold0_seed1" / "eval", 0, 0.0)
    base = load_recipe("base", recipes[0])
    assert len(base.runs) == 4
    ensemble = load_recipe("ensemble", tmp_path / "ensemble")
    paired = compare([base, ensemble], "base")["rows"][1]["paired_vs_baseline"]["test/bal_acc"]
    # Fold means of the baseline: 0.65 and 0.85.
    assert paired["per_fold"] == pytest.approx({0: 0.10, 1: -0.05})
    assert paired["n"] == 2


def test_readme_table_copies_each_recipe_and_fold_from_the_comparison(
    recipes: tuple[Path, Path], tmp_path: Path
) -> None:
    json_out = tmp_path / "t.json"
    main(
        [
            *(str(path) for path in recipes),
            "--compare",
            "--baseline",
            "base",
            "--json",
            str(json_out),
        ]
    )
    table_out = tmp_path / "table.md"
    done = emotion(
        "emotion.bench.recipes_table",
        f"toy={json_out}",
        f"absent={tmp_path / 'missing.json'}",
        "--out",
        str(table_out),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    lines = table_out.read_text().splitlines()
    assert lines[0] == "**toy**" and "absent" not in table_out.read_text()
    (base_row,) = [line for line in lines if line.startswith("| base | 0.750")]
    assert "(baseline)" in base_row
    (candidate_row,) = [line for line in lines if line.startswith("| candidate | 0.800")]
    assert "+0.050 ± 0.129 (n=4), within noise" in candidate_row
    assert "| candidate | +0.150 | -0.050 |" in lines
