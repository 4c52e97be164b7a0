"""`python -m emotion.bench gpu` runs end to end on the CPU at tiny sizes, so the one script a
GPU session gets to run cannot rot unnoticed (figures at these sizes mean nothing)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


def _bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "emotion.bench", "gpu", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_gpu_bench_on_the_cpu_writes_every_section(tmp_path: Path) -> None:
    output = tmp_path / "gpu.json"
    finished = _bench(
        "--device",
        "cpu",
        "--samples",
        "2000",
        "--epochs",
        "1",
        "--rounds",
        "1",
        "--batch-sizes",
        "256",
        "512",
        "--scaling-epochs",
        "1",
        "--infer-iterations",
        "20",
        "--infer-batch",
        "64",
        "--infer-batch-iterations",
        "2",
        "--threads",
        "1",
        "--output",
        str(output),
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    result = json.loads(output.read_text())
    assert "SYNTHETIC" in result["data"] and result["machine"]["device"] == "cpu"
    assert result["machine"]["torch_threads"] == 1
    training = result["training"]
    assert training["median_framework_samples_per_s"] > 0
    assert training["ratio_framework_over_bare"] > 0
    for side in ("framework", "bare"):
        split = result["step_split"][side]
        assert split["steps"] > 0 and 0 <= split["share_of_epoch"]["forward"] <= 1
        assert split["other_share"] < 1
    runs = result["batch_scaling"]["runs"]
    assert [run["batch_size"] for run in runs] == [256, 512]
    assert runs[1]["lr"] == pytest.approx(2e-3) and runs[0]["speedup_vs_256"] == 1.0
    assert all(0 <= run["val_bal_acc"] <= 1 for run in runs)
    inference = result["inference"]
    assert inference["backend"].startswith("torch") and inference["single"]["p50_ms"] > 0
    assert inference["batch"]["rows_per_s"] > 0
    assert set(result["targets"].values()) <= {True, False}


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_asking_for_cuda_without_one_is_a_user_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from emotion.bench import gpu

    with pytest.raises(SystemExit) as exited:
        gpu.main(["--output", str(tmp_path / "gpu.json")])
    assert exited.value.code == 2
    stderr = capsys.readouterr().err
    assert "error:" in stderr and "--device cpu" in stderr
    assert not (tmp_path / "gpu.json").exists()
