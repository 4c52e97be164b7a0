"""The serving benchmark runs end to end at tiny durations, as users start it, so it cannot rot
unnoticed (figures at these durations mean nothing; the README's come from the full run)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.commands import emotion


@pytest.mark.slow
def test_bench_serve_writes_rates_stream_soak_and_targets(tmp_path: Path) -> None:
    output = tmp_path / "serve.json"
    done = emotion(
        "emotion.bench",
        "serve",
        "--root",
        str(tmp_path / "absent"),  # the fixture face and its variants instead of ../shared
        "--seconds",
        "0.5",
        "--clients",
        "1",
        "2",
        "--stream-seconds",
        "0.5",
        "--soak-seconds",
        "4",
        "--session-ttl",
        "1",
        "--scale-seconds",
        "0.5",
        "--scale-rounds",
        "1",
        "--output",
        str(output),
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(output.read_text())
    assert result["photos"] == "fixture"
    assert result["clients_on_same_machine"] is True
    # Both tiny models were trained here, on SYNTHETIC landmarks, and the JSON says so.
    assert result["trained_on_synthetic"] is True
    assert result["models"]["soak"]["baseline"] == "enrolled"
    assert result["bare_loop"]["photos_per_s"] > 0
    for workers in ("workers_1", "workers_2"):
        for clients in ("clients_1", "clients_2"):
            point = result["throughput"][workers][clients]
            assert point["requests_per_s"] > 0 and point["faces"] == point["requests"]
            assert point["errors"] == 0, point["error_kinds"]
            assert len(point["load_average_at_start"]) == 3
            assert point["cpu_cores_used"]["server"] > 0
        assert result["server_vs_bare"][workers] > 0
    for run in ("unpaced", "paced"):
        assert result["stream"][run]["frames_per_s"] > 0
        assert result["stream"][run]["statuses"].get("ok", 0) > 0
    soak = result["soak"]
    assert soak["errors"] == 0, soak["error_kinds"]
    assert soak["requests"]["create"] > 0 and soak["requests"]["delete"] > 0
    assert soak["left_sessions_all_expired"] is True
    assert soak["rss"]["first_mb"] > 0 and soak["rss"]["growth_mb"] is not None
    assert result["errors_total"] == 0
    assert set(result["targets"]) == {
        "server_vs_bare_at_1_client",
        "rps_grows_with_workers_at_most_clients",
        "p99_within_3x_p50_at_1_client",
        "zero_errors",
        "rss_growth_under_50_mb",
        "stream_keeps_up",
        "landmarks_vs_images",
        "processes",
        "stream_landmarks_vs_frames",
    }
    scale = result["scale"]
    assert scale["landmarks_vs_images"]["landmarks_requests_per_s"] > 0
    assert scale["landmarks_vs_images"]["landmarks"][0]["errors"] == 0
    assert scale["landmarks_vs_images"]["landmarks"][0]["path"] == "/v1/predict/landmarks"
    streamed = scale["stream_landmarks_vs_frames"]["landmarks"][0]
    assert streamed["frames"] > 0 and streamed["errors"] == 0, streamed["statuses"]
    assert streamed["statuses"].get("ok", 0) > 0
    for processes in ("processes_1", "processes_2"):
        (point,) = scale["processes"][processes]
        assert point["requests_per_s"] > 0 and point["errors"] == 0
        assert point["cpu_cores_used"]["server"] > 0
    assert all(target["met"] in (True, False, None) for target in result["targets"].values())
    assert len(result["machine"]["load_average_at_end"]) == 3
    assert result["other_work_cores"]["max"] >= 0
    assert "target zero_errors: met" in done.stdout
