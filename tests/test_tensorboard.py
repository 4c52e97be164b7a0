"""TensorBoard as a viewer meets it: the `tensorboard` command serving a trained run over HTTP.

Checking the event files alone would not have caught a `tensorboard` that does not start (a
setuptools without `pkg_resources`), so this starts the real server on a loopback port and
reads the same HTTP API the dashboard's browser code reads.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.trained_run import train_tiny

BOOT_SECONDS = 90


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Dashboard:
    """A running `tensorboard --logdir ...` and small helpers over its HTTP API."""

    def __init__(self, logdir: Path) -> None:
        self.port = free_port()
        executable = Path(sys.executable).with_name("tensorboard")
        self.process = subprocess.Popen(
            [str(executable), "--logdir", str(logdir), "--host", "127.0.0.1"]
            + ["--port", str(self.port), "--reload_interval", "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )

    def url(self, path: str, **query: str) -> str:
        suffix = f"?{urllib.parse.urlencode(query)}" if query else ""
        return f"http://127.0.0.1:{self.port}{path}{suffix}"

    def get(self, path: str, **query: str) -> bytes:
        with urllib.request.urlopen(self.url(path, **query), timeout=10) as response:
            assert response.status == 200
            return response.read()

    def get_json(self, path: str, **query: str) -> Any:
        return json.loads(self.get(path, **query))

    def post_json(self, path: str, body: dict[str, Any]) -> Any:
        request = urllib.request.Request(
            self.url(path),
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=10) as response:
            return json.loads(response.read())

    def wait_for(self, check: Any, what: str) -> Any:
        """Poll until `check()` is truthy; fail with the server's output if it never is."""
        deadline = time.monotonic() + BOOT_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                output = self.process.stdout.read() if self.process.stdout else ""
                pytest.fail(f"tensorboard exited with {self.process.returncode}:\n{output}")
            try:
                found = check()
            except (urllib.error.URLError, ConnectionError, json.JSONDecodeError):
                found = None
            if found:
                return found
            time.sleep(0.5)
        pytest.fail(f"tensorboard never served {what} within {BOOT_SECONDS} s")

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def dashboard(tiny_store_path: Path, tmp_path: Path) -> Iterator[tuple[Dashboard, str]]:
    """A tiny trained run under tmp/outputs and a dashboard over tmp/outputs, as README says."""
    outputs = tmp_path / "outputs"
    run_dir = outputs / "train" / "runs" / "tiny"
    train_tiny(tiny_store_path, run_dir)
    server = Dashboard(outputs)
    try:
        yield server, "train/runs/tiny/tensorboard"
    finally:
        server.stop()


def test_tensorboard_serves_scalars_hparams_and_confusion_images(
    dashboard: tuple[Dashboard, str],
) -> None:
    server, run = dashboard
    runs = server.wait_for(lambda: run in server.get_json("/data/runs") and True, "the run")
    assert runs

    tags = server.wait_for(
        lambda: server.get_json("/data/plugin/scalars/tags").get(run), "scalar tags"
    )
    for tag in ("val/bal_acc", "val/recall_anxious", "train/loss_epoch", "test/bal_acc"):
        assert tag in tags, sorted(tags)
    # Lightning's step-to-epoch scalar would be the first card, above every curve.
    assert "epoch" not in tags, sorted(tags)
    points = server.get_json("/data/plugin/scalars/scalars", run=run, tag="val/bal_acc")
    assert points and all(0.0 <= value <= 1.0 for _, _, value in points)

    experiment = server.wait_for(
        lambda: server.post_json("/data/plugin/hparams/experiment", {"experimentName": ""}),
        "the HPARAMS experiment",
    )
    hparams = {info["name"] for info in experiment["hparamInfos"]}
    assert {"depth", "width", "noise_std", "seed", "n_params"} <= hparams
    metrics = [info["name"]["tag"] for info in experiment["metricInfos"]]
    assert {"hp/val_bal_acc", "hp/test_bal_acc"} <= set(metrics)
    # Runs are chosen on validation: its metrics are the first columns, headline first.
    first_test = next(i for i, tag in enumerate(metrics) if tag.startswith("hp/test_"))
    assert all(tag.startswith("hp/val_") for tag in metrics[:first_test]), metrics
    assert not any(tag.startswith("hp/val_") for tag in metrics[first_test:]), metrics
    assert metrics[0] == "hp/val_bal_acc", metrics
    # A yes/no setting reads true/false, not 1.0000.
    infos = {info["name"]: info for info in experiment["hparamInfos"]}
    assert infos["aspect_correction"]["type"] == "DATA_TYPE_STRING", infos
    groups = server.post_json(
        "/data/plugin/hparams/session_groups",
        {
            "experimentName": "",
            "allowedStatuses": ["STATUS_UNKNOWN", "STATUS_SUCCESS", "STATUS_RUNNING"],
            "startIndex": 0,
            "sliceSize": 10,
        },
    )
    values = {group["hparams"]["aspect_correction"] for group in groups["sessionGroups"]}
    assert values <= {"true", "false"} and values, groups

    images = server.wait_for(
        lambda: server.get_json("/data/plugin/images/tags").get(run), "image tags"
    )
    assert {"val/confusion_matrix", "test/confusion_matrix"} <= set(images)
    series = server.get_json(
        "/data/plugin/images/images", run=run, tag="test/confusion_matrix", sample="0"
    )
    png = server.get(f"/data/plugin/images/individualImage?{series[-1]['query']}")
    assert png.startswith(b"\x89PNG")
