"""The recipe table against another baseline (issue 26 item 7): recipes.sh's BASELINE knob, the
enrolled rows' own table, and the brief table's standard error and "wins on every fold"."""

from __future__ import annotations

import json
import math
import os
import statistics
import subprocess
import sys
from pathlib import Path

from tests.commands import ROOT, emotion

SEEDS = (1, 2)
FOLDS = (0, 1, 2)
# recipe -> fold -> the test/bal_acc of both seeds, and each fold's (mean over seeds) change
BASE = {0: 0.60, 1: 0.70, 2: 0.80}
EVERY = {0: 0.05, 1: 0.01, 2: 0.02}  # better on every fold, a little
MOST = {0: 0.20, 1: 0.20, 2: -0.03}  # better on average, worse on one fold


def _write(root: Path, fold: int, seed: int, value: float) -> None:
    """One run's metrics.json, as emotion-train writes it for a k-fold run."""
    run = root / f"fold{fold}_seed{seed}"
    run.mkdir(parents=True)
    config = {"seed": seed, "data": {"fold": fold, "num_folds": len(FOLDS), "split_seed": 0}}
    payload = {"config": config, "test": {"test/bal_acc": value, "test/recall_anxious": value}}
    (run / "metrics.json").write_text(json.dumps(payload))


def _recipe(root: Path, change: dict[int, float], spread: float = 0.02) -> None:
    """Each fold at the baseline plus the fold's change; seed 2 a further `spread` above."""
    for fold in FOLDS:
        for seed in SEEDS:
            _write(root, fold, seed, BASE[fold] + change[fold] + spread * (seed == 2))


def test_brief_table_gives_the_standard_error_and_the_folds_a_change_beats(
    tmp_path: Path,
) -> None:
    for name, change in (("every", EVERY), ("most", MOST)):
        _recipe(tmp_path / name, change)
    _recipe(tmp_path / "base", dict.fromkeys(FOLDS, 0.0), spread=0.0)
    comparison = tmp_path / "t.json"
    done = emotion(
        "emotion.summary",
        *(str(tmp_path / name) for name in ("base", "every", "most")),
        "--compare",
        "--baseline",
        "base",
        "--json",
        str(comparison),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    done = emotion("emotion.bench.recipes_table", f"toy={comparison}", cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    header = next(line for line in done.stdout.splitlines() if line.startswith("| recipe |"))
    columns = [cell.strip() for cell in header.strip("|").split("|")]
    rows = {
        line.split("|")[1].strip(): [cell.strip() for cell in line.strip("|").split("|")]
        for line in done.stdout.splitlines()
        if line.startswith("| ") and "±" in line
    }
    se, folds = columns.index("SE of Δ"), columns.index("folds better")
    assert rows["base"][se] == rows["base"][folds] == "(baseline)"
    assert rows["every"][folds] == "3/3, wins on every fold"
    assert rows["most"][folds] == "2/3"
    for name, change in (("every", EVERY), ("most", MOST)):
        differences = [change[fold] + 0.02 * (seed == 2) for fold in FOLDS for seed in SEEDS]
        expected = statistics.stdev(differences) / math.sqrt(len(differences))
        assert rows[name][se] == f"{expected:.3f}"


def _recipes_sh(cwd: Path, **knobs: str) -> subprocess.CompletedProcess[str]:
    """emotion/bench/recipes.sh training nothing: it only rewrites the tables from the runs
    already under outputs/recipes/runs."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "PYTHON": sys.executable,
        "SYNTH_RECIPES": "",
        "REAL_RECIPES": "",
        "TRANSFER": "",
        "SAMPLE": str(cwd),
        "SEEDS": ",".join(map(str, SEEDS)),
        "REAL_FOLDS": str(len(FOLDS)),
        **knobs,
    }
    script = ROOT / "emotion" / "bench" / "recipes.sh"
    return subprocess.run(
        ["bash", str(script)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_recipes_pair_against_the_chosen_baseline_and_enrolled_rows_against_theirs(
    tmp_path: Path,
) -> None:
    runs = tmp_path / "outputs/recipes/runs/e200_f3_s1-2/real_sample"
    for name, change in (
        ("seed_reference", dict.fromkeys(FOLDS, -0.05)),
        ("default", dict.fromkeys(FOLDS, 0.0)),
        ("linear", MOST),
        ("default_enrolled", EVERY),
        ("linear_enrolled", MOST),
    ):
        _recipe(runs / name, change)
    (runs / "latest").symlink_to("linear_enrolled")  # emotion-train's link to its newest sweep
    out = tmp_path / "outputs/recipes"

    done = _recipes_sh(tmp_path)  # BASELINE unset: as before, against seed_reference only
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    assert json.loads((out / "real_sample_e200_f3_s1-2.json").read_text())["baseline"] == (
        "seed_reference"
    )
    assert not (out / "real_sample_enrolled_e200_f3_s1-2.json").exists()

    done = _recipes_sh(tmp_path, BASELINE="default")
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
    table = json.loads((out / "real_sample_e200_f3_s1-2.json").read_text())
    assert table["baseline"] == "default" and len(table["rows"]) == 5
    enrolled = json.loads((out / "real_sample_enrolled_e200_f3_s1-2.json").read_text())
    assert enrolled["baseline"] == "default_enrolled"
    assert [row["recipe"] for row in enrolled["rows"]] == ["default_enrolled", "linear_enrolled"]
    brief = (out / "table_eown_f5_s1-2.md").read_text()
    assert "**real sample**" in brief and "**real sample, enrolled rows**" in brief
    assert "Δ vs default_enrolled (paired)" in brief
