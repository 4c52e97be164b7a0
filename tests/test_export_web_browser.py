"""The static page of `emotion-export RUN --web DIR` in headless Chromium: the folder, made by
the CLI as a user makes it, served by a plain static file server (`python -m http.server`,
cwd DIR); the fake camera plays the fixture face, still.

The page's probabilities must be `emotion-predict`'s on the very pixels it scored (read back
from its #frame canvas), and it must ask for nothing outside its own folder.
"""

from __future__ import annotations

import base64
import json
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.browser import CHROMEDRIVER, CHROMIUM, chromium, wait_until
from tests.commands import emotion
from tests.test_export_web import export_web_cli
from tests.y4m import face_frame, looping_video

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

TOLERANCE = 1e-4  # |page - emotion-predict| per class probability
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver)",
    ),
]
pytest.importorskip("selenium", reason="the browser test needs selenium (pip install selenium)")
pytest.importorskip("mediapipe", reason="emotion-predict's FaceLandmarker needs the extract extra")

FACE = face_frame(400, 400)  # the fixture face, still: every camera frame is the same


@contextmanager
def static_server(folder: Path) -> Iterator[tuple[str, Path]]:
    """`python -m http.server` on a free loopback port, serving `folder`; its URL and log."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = folder.parent / f"{folder.name}.http.log"
    with open(log, "w") as stream:
        server = subprocess.Popen(
            [sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
            cwd=folder,
            stderr=stream,
            stdout=stream,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                urllib.request.urlopen(f"{url}/model.json", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise
                time.sleep(0.1)
        yield url, log
    finally:
        server.terminate()
        server.wait(timeout=10)


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """Headless Chromium whose fake camera shows FACE, still."""
    video = looping_video(tmp_path_factory.mktemp("camera") / "face.y4m", [(FACE, 1.0)])
    with chromium(video) as driver:
        yield driver


def _state(driver: WebDriver) -> dict[str, Any]:
    return driver.execute_script("return {...window.emotionState};") or {}


def _wait(
    driver: WebDriver, test: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60.0
) -> dict[str, Any]:
    return wait_until(driver, _state, test, what, timeout)


# The frame the page scored (its #frame canvas, as PNG) and its probabilities, in one turn.
SCORED = """
const state = window.emotionState;
return {probabilities: state.probabilities, status: state.status,
        png: document.getElementById('frame').toDataURL('image/png')};
"""


def _scored_frame(driver: WebDriver, path: Path) -> list[float]:
    """The page's probabilities for a scored frame, that frame written to `path`."""
    _wait(driver, lambda s: s.get("status") == "ok" and s.get("probabilities"), "a score")
    shown = driver.execute_script(SCORED)
    assert shown["status"] == "ok", shown["status"]
    path.write_bytes(base64.b64decode(shown["png"].split(",", 1)[1]))
    return [float(p) for p in shown["probabilities"]]


def _predicted(run: Path, frame: Path, *extra: str) -> list[float]:
    """emotion-predict's probabilities on the photo, in class order."""
    done = emotion(
        "emotion.predict",
        str(run),
        str(frame),
        "--format",
        "jsonl",
        "--reduce",
        "1",
        *extra,
        cwd=frame.parent,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["status"] == "ok", row
    return [row["p_neutral"], row["p_anxious"]]


def _only_its_own_files(driver: WebDriver, url: str, log: Path, folder: Path) -> None:
    """Every request the page made (its Performance entries) is under `url`, and each path
    the static server was asked for is a file of the folder."""
    names = driver.execute_script(
        "return performance.getEntriesByType('navigation').concat("
        "performance.getEntriesByType('resource')).map((e) => e.name);"
    )
    assert {"model.onnx", "face_landmarker.task", "vision_wasm_internal.wasm"} <= {
        name.rsplit("/", 1)[-1] for name in names
    }, names
    assert all(name.startswith(f"{url}/") for name in names), names
    asked = re.findall(r'"GET (\S+) HTTP', log.read_text())
    assert asked and all(
        (folder / path.lstrip("/").split("?")[0]).is_file() or path == "/" for path in asked
    ), asked


@pytest.fixture(scope="module")
def pose_run(photo_store: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny run that reads the landmarks through the head's pose, and the blendshapes."""
    from tests.trained_run import train_tiny

    run_dir = tmp_path_factory.mktemp("pose") / "run"
    features = "data.features=landmarks+blendshapes"
    train_tiny(
        photo_store[1], run_dir, "data.normalization=pose", features, "data.min_val_subjects=10"
    )
    return run_dir


@pytest.mark.parametrize(
    ("run", "inputs"),
    [
        ("plain_run", ["landmarks", "image_size"]),
        ("pose_run", ["landmarks", "image_size", "blendshapes", "pose"]),
    ],
)
def test_the_static_page_scores_the_face_as_emotion_predict(
    run: str, inputs: list[str], browser: WebDriver, tmp_path: Path, request: pytest.FixtureRequest
) -> None:
    run_dir = request.getfixturevalue(run)
    site = tmp_path / "site"
    done = export_web_cli(run_dir, site)
    assert done.returncode == 0, done.stderr[-3000:]
    with static_server(site) as (url, log):
        browser.get(f"{url}/")
        state = _wait(browser, lambda s: s.get("ready"), "a camera")
        assert state["inputs"] == inputs, state
        got = _scored_frame(browser, tmp_path / "frame.png")
        text = browser.execute_script("return document.body.innerText;")
        _only_its_own_files(browser, url, log, site)
        browser.get("about:blank")
    assert "never leave this device" in text and "real photos" in text, text
    assert "SYNTHETIC" not in text
    expected = _predicted(run_dir, tmp_path / "frame.png")
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= TOLERANCE, (got, expected)


def _click(driver: WebDriver, element_id: str) -> None:
    driver.execute_script(f"document.getElementById('{element_id}').click();")


def test_a_baseline_page_scores_only_against_the_rest_face_it_keeps(
    enrolled_run: Path, browser: WebDriver, tmp_path: Path
) -> None:
    """Refuses before calibration; after it scores as emotion-predict --enroll on the same
    face; the rest face survives a reload and is gone when forgotten."""
    site = tmp_path / "site"
    done = export_web_cli(enrolled_run, site)
    assert done.returncode == 0, done.stderr[-3000:]
    with static_server(site) as (url, log):
        browser.get(f"{url}/")
        state = _wait(browser, lambda s: s.get("status") == "no_reference", "a face, uncalibrated")
        assert "reference_landmarks" in state["inputs"] and not state["calibrated"], state
        assert state["probabilities"] is None and state["score"] is None, state
        shown = browser.execute_script(
            "return ['score', 'label', 'calibration'].map((id) => "
            "document.getElementById(id).textContent.trim());"
        )
        assert shown[:2] == ["—", "Calibrate first"] and "Not calibrated" in shown[2], shown

        _click(browser, "calibrate")
        _wait(browser, lambda s: s["status"] == "calibrating", "calibration", 10)
        state = _wait(browser, lambda s: s["calibrated"], "a rest face", 20)
        assert 1 <= state["enrolled"] <= 30, state
        got = _scored_frame(browser, tmp_path / "frame.png")

        browser.refresh()
        state = _wait(browser, lambda s: s.get("status") == "ok", "a score after a reload")
        assert state["calibrated"], state
        _only_its_own_files(browser, url, log, site)
        _click(browser, "forget")
        state = _wait(browser, lambda s: s["status"] == "no_reference", "the rest face forgotten")
        assert not state["calibrated"], state
        stored = browser.execute_script("return localStorage.length;")
        browser.refresh()
        state = _wait(browser, lambda s: s.get("status") == "no_reference", "no rest face")
        browser.get("about:blank")
    assert stored == 0 and not state["calibrated"]
    frame = tmp_path / "frame.png"
    expected = _predicted(enrolled_run, frame, "--enroll", str(frame))
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= TOLERANCE, (got, expected)


def test_a_synthetic_model_says_so_on_the_page(
    synthetic_run: tuple[Path, dict[str, Any]], browser: WebDriver, tmp_path: Path
) -> None:
    """And opened as a file (no server), the page says to serve it."""
    site = tmp_path / "site"
    done = export_web_cli(synthetic_run[0], site)
    assert done.returncode == 0, done.stderr[-3000:]
    with static_server(site) as (url, _):
        browser.get(f"{url}/")
        _wait(browser, lambda s: s.get("inputs"), "the model")
        banner, hidden = browser.execute_script(
            "const b = document.getElementById('synthetic-banner');"
            "return [b.textContent, b.hidden];"
        )
        browser.get(site.as_uri() + "/index.html")
        as_file = browser.execute_script("return document.getElementById('error').textContent;")
        browser.get("about:blank")
    assert not hidden and "SYNTHETIC landmarks" in banner and "say little" in banner, banner
    assert "must come from a web server" in as_file, as_file
