"""trainer=ddp: two CPU processes (gloo) through Lightning, metrics synced over ranks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands import TINY, emotion


@pytest.mark.slow
def test_ddp_on_cpu_trains_and_scores_every_test_row_once(
    tiny_store_path: Path, tmp_path: Path
) -> None:
    done = emotion(
        "emotion.training",
        "data=store",
        f"data.path={tiny_store_path}",
        *TINY,
        "trainer=ddp",
        "trainer.accelerator=cpu",
        "trainer.devices=2",
        "run_name=ddp",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "MEMBER: 2/2" in done.stderr + done.stdout
    result = json.loads((tmp_path / "outputs/train/runs/ddp/metrics.json").read_text())
    test_rows = result["data"]["stages"]["test"]["rows"]
    assert sum(map(sum, result["test_confusion_matrix"])) == test_rows
    train_rows = result["data"]["stages"]["train"]["rows"]
    assert result["global_step"] == -(-(train_rows // 2) // 64)  # each rank: half the rows
