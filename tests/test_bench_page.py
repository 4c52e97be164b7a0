"""`python -m emotion.bench page` end to end at a tiny duration, as users start it (figures at
this length mean nothing; results.md has the full run's)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emotion.bench.page import CHROMEDRIVER, CHROMIUM, VENDOR
from tests.commands import emotion

pytest.importorskip("selenium", reason="the page benchmark drives Chromium with selenium")


@pytest.mark.slow
@pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists() and VENDOR.exists()),
    reason="needs Debian's chromium and chromedriver and the vendored runtime (make setup)",
)
def test_bench_page_writes_the_pages_rate_and_the_landmarkers_cost(tmp_path: Path) -> None:
    output = tmp_path / "page.json"
    done = emotion("emotion.bench", "page", "--seconds", "3", "--output", str(output), cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(output.read_text())
    assert result["mode"] == "landmarks"
    assert result["frames_answered"] > 0 and result["landmarker_calls"] > 0
    assert result["landmarker_ms_mean"] > 0
    assert result["server_stats"]["image_bytes"] == 0  # the page sent numbers only
    assert len(result["load_average_at_start"]) == 3
    assert result["targets"]["page_keeps_15_fps_on_one_core"]["met"] in (True, False)
