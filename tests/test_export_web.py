"""`emotion-export RUN --web DIR`: the static page, made by the CLI as a user makes it, served
by a plain static file server (`python -m http.server`, cwd DIR) to headless Chromium, whose
fake camera plays the fixture face; and the CLI's refusals.

The page's probabilities must be `emotion-predict`'s on the very pixels it scored (read back
from its #frame canvas), and it must ask for nothing outside its own folder.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
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

from emotion.export.web import PAGE_FILES, VENDOR_FILES
from tests.commands import ROOT, emotion
from tests.test_export import _checkpoint
from tests.y4m import face_frame, looping_video

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
TOLERANCE = 1e-4  # |page - emotion-predict| per class probability
browser_only = pytest.mark.skipif(
    not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
    reason="needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)",
)


def _export(model: Path, folder: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return emotion("emotion.export", str(model), "--web", str(folder), *extra, cwd=folder.parent)


def _refused(done: subprocess.CompletedProcess[str], what: str) -> None:
    """Exit 2 with one `error:` line naming `what` and one `fix:` line, no traceback."""
    assert done.returncode == 2, done.stderr[-2000:]
    lines = [line.strip() for line in done.stderr.strip().splitlines()]
    assert lines[-2].startswith("error: ") and what in lines[-2], done.stderr
    assert lines[-1].startswith("fix: "), done.stderr
    assert "Traceback" not in done.stderr


def _leftovers(parent: Path) -> list[str]:
    return sorted(path.name for path in parent.iterdir() if ".partial" in path.name)


# ---------- the CLI ----------


def test_the_folder_holds_the_page_its_runtimes_and_the_model(tmp_path: Path) -> None:
    """--overwrite replaces a folder that holds something; nothing of the old one remains."""
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", True)
    site = tmp_path / "site"
    site.mkdir()
    (site / "old.txt").write_text("an earlier page")
    done = _export(checkpoint, site, "--overwrite")
    assert done.returncode == 0, done.stderr[-3000:]
    assert "sends nothing anywhere" in done.stdout
    files = {str(path.relative_to(site)) for path in site.rglob("*") if path.is_file()}
    expected = {*PAGE_FILES, *(f"vendor/{name}" for name in VENDOR_FILES)}
    expected |= {"model.onnx", "model.json", "face_landmarker.task"}
    assert expected <= files and "old.txt" not in files, sorted(files)
    assert _leftovers(tmp_path) == [] and sorted(p.name for p in tmp_path.iterdir()) == [
        "m.ckpt",
        "site",
    ]
    info = json.loads((site / "model.json").read_text())
    assert info["onnx"] == "model.onnx" and str(tmp_path) not in json.dumps(info)
    assert info["page"]["needs_reference"] is False and info["page"]["positive_class"] == "anxious"
    assert list(info["inputs"]) == ["landmarks", "image_size"]
    # Every URL the page names is relative: a CDN or an absolute path would leave the folder.
    links = re.findall(r'(?:src|href)="([^"]*)"', (site / "index.html").read_text())
    links += re.findall(r"from '([^']*)'", (site / "app.js").read_text())
    assert len(links) >= 4 and all(
        link == "data:," or (not link.startswith("/") and "//" not in link) for link in links
    ), links


def test_a_folder_that_holds_something_is_refused_and_kept(tmp_path: Path) -> None:
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", False)
    site = tmp_path / "site"
    site.mkdir()
    (site / "notes.txt").write_text("mine")
    _refused(_export(checkpoint, site), "is not empty")
    assert [p.name for p in site.iterdir()] == ["notes.txt"] and _leftovers(tmp_path) == []


def test_a_model_the_graph_cannot_hold_leaves_no_folder(tmp_path: Path) -> None:
    """Procrustes is refused after the work has started: no DIR, no half-made folder."""
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "procrustes", False)
    _refused(_export(checkpoint, tmp_path / "site"), "ONNX operator")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.ckpt"]


def test_web_with_output_is_refused(tmp_path: Path) -> None:
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", False)
    _refused(_export(checkpoint, tmp_path / "site", "--output", "x.onnx"), "--web")
    assert not (tmp_path / "site").exists()


def test_a_package_without_the_browser_runtimes_says_how_to_get_them(tmp_path: Path) -> None:
    """An installed package whose vendor folder npm never filled (a copy of it, here)."""
    checkpoint = _checkpoint(tmp_path / "m.ckpt", "nose_unit", False)
    installed = tmp_path / "installed"
    shutil.copytree(
        ROOT / "emotion",
        installed / "emotion",
        ignore=shutil.ignore_patterns("vendor", "__pycache__"),
    )
    done = subprocess.run(
        [sys.executable, "-m", "emotion.export", str(checkpoint), "--web", str(tmp_path / "s")],
        cwd=installed,
        env={**os.environ, "PYTHONPATH": str(installed)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    _refused(done, "browser runtimes are not installed")
    assert "make setup" in done.stderr and "web/vendor.sh" in done.stderr
    assert not (tmp_path / "s").exists()


# ---------- the page in a real browser ----------

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
    pytest.importorskip("selenium", reason="the browser test needs selenium (pip install selenium)")
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager phones home otherwise
    video = looping_video(tmp_path_factory.mktemp("camera") / "face.y4m", [(FACE, 1.0)])
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (
        "--headless=new",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--use-fake-ui-for-media-stream",
        "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
        "--window-size=1280,900",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        yield driver
    finally:
        driver.quit()


def _state(driver: WebDriver) -> dict[str, Any]:
    return driver.execute_script("return {...window.emotionState};") or {}


def _wait(
    driver: WebDriver, test: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        state = _state(driver)
        if test(state):
            return state
        if time.monotonic() > deadline:
            logs = [entry["message"] for entry in driver.get_log("browser")][-10:]
            raise AssertionError(f"the page did not show {what} in {timeout:g} s: {state}, {logs}")
        time.sleep(0.1)


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


@pytest.mark.slow
@browser_only
def test_the_static_page_scores_the_face_as_emotion_predict(
    plain_run: Path, browser: WebDriver, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    done = _export(plain_run, site)
    assert done.returncode == 0, done.stderr[-3000:]
    with static_server(site) as (url, log):
        browser.get(f"{url}/")
        state = _wait(browser, lambda s: s.get("ready"), "a camera")
        assert state["inputs"] == ["landmarks", "image_size"], state
        got = _scored_frame(browser, tmp_path / "frame.png")
        text = browser.execute_script("return document.body.innerText;")
        _only_its_own_files(browser, url, log, site)
        browser.get("about:blank")
    assert "never leave this device" in text and "real photos" in text, text
    assert "SYNTHETIC" not in text
    expected = _predicted(plain_run, tmp_path / "frame.png")
    assert max(abs(a - b) for a, b in zip(got, expected, strict=True)) <= TOLERANCE, (got, expected)


def _click(driver: WebDriver, element_id: str) -> None:
    driver.execute_script(f"document.getElementById('{element_id}').click();")


@pytest.mark.slow
@browser_only
def test_a_baseline_page_scores_only_against_the_rest_face_it_keeps(
    enrolled_run: Path, browser: WebDriver, tmp_path: Path
) -> None:
    """Refuses before calibration; after it scores as emotion-predict --enroll on the same
    face; the rest face survives a reload and is gone when forgotten."""
    site = tmp_path / "site"
    done = _export(enrolled_run, site)
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


@pytest.mark.slow
@browser_only
def test_a_synthetic_model_says_so_on_the_page(
    synthetic_run: tuple[Path, dict[str, Any]], browser: WebDriver, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    done = _export(synthetic_run[0], site)
    assert done.returncode == 0, done.stderr[-3000:]
    with static_server(site) as (url, _):
        browser.get(f"{url}/")
        _wait(browser, lambda s: s.get("inputs"), "the model")
        banner, hidden = browser.execute_script(
            "const b = document.getElementById('synthetic-banner');"
            "return [b.textContent, b.hidden];"
        )
        browser.get("about:blank")
    assert not hidden and "SYNTHETIC landmarks" in banner and "say little" in banner, banner
