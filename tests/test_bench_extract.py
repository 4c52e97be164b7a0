"""The extraction benchmark runs end to end on the tiny AI Hub-style tree (slow: ~1 min)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emotion.bench import extract as bench
from tests.extract_tree import build_aihub_tree


@pytest.mark.slow
def test_bench_extract_writes_every_figure_and_target(tmp_path: Path) -> None:
    tree = build_aihub_tree(tmp_path / "aihub")
    output = tmp_path / "extract.json"
    common = ["--root", str(tree.root), "--rounds", "1", "--copies", "1", "--workers", "1"]
    bench.main([*common, "--output", str(output)])
    result = json.loads(output.read_text())
    assert set(result["per_worker"]) == set(bench.METHODS)
    assert result["per_worker"]["reference"]["images_per_s"] > 0
    assert result["synthetic_upscale"] is None
    assert result["landmark_tolerance"]["reduce_auto"]["faces_compared"] > 0
    assert set(result["targets"]) == {
        "default_decode_within_landmark_tolerance",
        "per_worker_at_least_3.5x_reference",
        "per_worker_not_slower_than_bare_loop",
        "steady_scaling_at_least_1.8",
    }

    upscaled = tmp_path / "upscaled.json"
    bench.main([*common, "--upscale", "1024x768", "--output", str(upscaled)])
    result = json.loads(upscaled.read_text())
    assert result["synthetic_upscale"] == "1024x768"
    assert set(result["photo_sizes"]) <= {"1024x768 (auto 1/1)", "768x1024 (auto 1/1)"}
