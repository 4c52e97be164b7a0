"""emotion-summary groups by what varies and averages over seeds and folds."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emotion.errors import EmotionError
from emotion.summary.table import load_runs, render, summarise


def _write(root: Path, name: str, depth: int, seed: int, value: float) -> None:
    run = root / name
    run.mkdir(parents=True)
    payload = {
        "config": {
            "seed": seed,
            "model": {"depth": depth, "width": 64},
            "paths": {"run_dir": str(run)},
        },
        "val": {"val/bal_acc": value},
        "test": {"test/bal_acc": value - 0.1},
    }
    (run / "metrics.json").write_text(json.dumps(payload))


def test_groups_by_varying_settings_with_mean_and_std_over_seeds(tmp_path: Path) -> None:
    for seed, (shallow, deep) in enumerate([(0.6, 0.8), (0.7, 0.9), (0.8, 1.0)]):
        _write(tmp_path, f"d2_s{seed}", 2, seed, shallow)
        _write(tmp_path, f"d4_s{seed}", 4, seed, deep)
    varying, groups = summarise(load_runs(tmp_path), "val/bal_acc")
    assert varying == ["model.depth"]
    by_depth = {g.settings["model.depth"]: g for g in groups}
    assert by_depth[4].mean == pytest.approx(0.9) and by_depth[4].std == pytest.approx(0.1)
    assert by_depth[2].values == pytest.approx([0.6, 0.7, 0.8])
    table = render(varying, groups, "val/bal_acc", "markdown", descending=True)
    assert table.splitlines()[2].startswith("| 4 | 3 | 0.9000 ± 0.1000")


def test_unknown_metric_lists_the_known_ones(tmp_path: Path) -> None:
    _write(tmp_path, "a", 2, 0, 0.5)
    with pytest.raises(EmotionError, match="val/bal_acc"):
        summarise(load_runs(tmp_path), "val/accuracy")


def test_empty_directory_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(EmotionError, match="no metrics.json"):
        load_runs(tmp_path)


def test_evaluation_outputs_inside_a_sweep_are_not_runs(tmp_path: Path) -> None:
    for seed in (0, 1):
        _write(tmp_path, f"d2_s{seed}", 2, seed, 0.6)
    for folder in ("d2_s0/eval", "eval-ensemble"):  # what emotion-eval writes
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "metrics.json").write_text(
            json.dumps({"metrics": {"test/bal_acc": 0.0}, "ensemble": None})
        )
    assert len(load_runs(tmp_path)) == 2
