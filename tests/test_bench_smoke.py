"""The training and inference benchmarks run end to end at tiny sizes, so neither can rot
unnoticed (figures at these sizes mean nothing; docs/results.md's come from the full runs)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest


@pytest.mark.slow
def test_bench_train_writes_its_ratio(tmp_path: Path) -> None:
    from emotion.bench import train as bench

    output = tmp_path / "train.json"
    bench.main(["--samples", "2000", "--rounds", "1", "--out", str(output)])
    result = json.loads(output.read_text())
    text = json.dumps(result)
    assert "SYNTHETIC" in text and "ratio" in text
    # Shared machines: every figure travels with the load it was measured under.
    assert len(result["machine"]["load_average_at_start"]) == 3
    assert len(result["machine"]["load_average_at_end"]) == 3


@pytest.mark.slow
def test_bench_infer_writes_backends_baseline_graph_and_predict(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime", reason="needs the export extra")
    from emotion.bench import infer as bench

    output = tmp_path / "infer.json"
    bench.main(
        [
            "--root",
            str(tmp_path / "absent"),  # the fixture face instead of ../shared
            "--photos",
            "4",
            "--single-iterations",
            "40",
            "--batch",
            "16",
            "--batch-iterations",
            "2",
            "--no-compile",
            "--output",
            str(output),
        ]
    )
    result = json.loads(output.read_text())
    assert result["backends"]["onnxruntime"]["single"]["p50_ms"] > 0
    assert result["backends"]["baseline_graph"]["enrolled_x_single_photo"] > 0
    assert result["end_to_end"]["predict_end_to_end"]["photos_per_s"] > 0
    assert "enrolled_graph_within_1.5x_single_photo" in result["targets"]
