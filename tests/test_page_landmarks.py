"""The served page's landmark mode in a real browser (headless Chromium, the fake camera of
tests/test_serve_browser.py): the page finds the face with tasks-vision's FaceLandmarker and
sends only numbers. Its landmarks equal the Python extractor's on the same pixels, its score
equals emotion-predict's on that frame, and the server receives no image byte. A baseline
model's rest face is kept in the browser across reloads and forgotten on request; a browser
without WebAssembly falls back to sending frames, and says so.

What the page sends is seen from inside it: a script, added before the page's own, counts the
WebSocket messages by kind (Chrome's performance log does not carry binary payloads).
"""

from __future__ import annotations

import base64
import io
import json
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest
from PIL import Image

from emotion.features.geometry import nose_unit
from tests.browser import CHROMEDRIVER, CHROMIUM, chromium, wait_until
from tests.commands import emotion
from tests.serving import running_server
from tests.test_serve_browser import LOOP
from tests.y4m import looping_video

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

VENDOR = Path(__file__).resolve().parents[1] / "emotion/serve/static/vendor/tasks-vision"

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver",
    ),
    pytest.mark.skipif(
        not (VENDOR / "vision_bundle.mjs").exists(),
        reason="the page's landmarker is vendored at build time: bash web/vendor.sh",
    ),
]
pytest.importorskip("selenium", reason="the browser test needs selenium (pip install selenium)")
pytest.importorskip("mediapipe", reason="emotion-serve's FaceMesh needs the extract extra")

# Counts what the page sends on its WebSockets, before any of the page's scripts runs.
RECORD_SENDS = """
window.__sent = {text: 0, binary: 0, textBytes: 0, binaryBytes: 0, types: {}};
const originalSend = WebSocket.prototype.send;
WebSocket.prototype.send = function (data) {
  const sent = window.__sent;
  if (typeof data === 'string') {
    sent.text += 1;
    sent.textBytes += data.length;
    let type = '?';
    try { type = JSON.parse(data).type; } catch (e) {}
    sent.types[type] = (sent.types[type] || 0) + 1;
  } else {
    sent.binary += 1;
    sent.binaryBytes += data.size ?? data.byteLength ?? 0;
  }
  return originalSend.call(this, data);
};
"""
LOOK = """
const text = (id) => document.getElementById(id).textContent.trim();
return {...(window.emotionState || {}), sent: window.__sent, mode_text: text('mode'),
  privacy_text: text('privacy'), calibration_text: text('calibration'),
  forget_shown: !document.getElementById('forget').hidden,
  stored: localStorage.getItem('emotion.reference')};
"""


# A browser without WebAssembly, as the page sees one. (Chromium's --js-flags=--noexpose_wasm
# does not hide it from Chromium 156 here.)
NO_WEBASSEMBLY = "delete globalThis.WebAssembly;"


def _chromium(video: Path, *scripts: str, blocked: tuple[str, ...] = ()) -> Any:
    """The shared browser, recording what the page sends (RECORD_SENDS) before any script."""
    return chromium(video, RECORD_SENDS, *scripts, blocked=blocked)


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return looping_video(tmp_path_factory.mktemp("camera") / "faces.y4m", LOOP)


@pytest.fixture(scope="module")
def browser(video: Path) -> Iterator[WebDriver]:
    with _chromium(video) as driver:
        yield driver


def _wait(
    driver: WebDriver, test: Callable[[dict[str, Any]], bool], what: str, timeout: float = 60.0
) -> dict[str, Any]:
    return wait_until(driver, lambda d: d.execute_script(LOOK), test, what, timeout, every=0.2)


def _stats(base_url: str) -> dict[str, int]:
    with urllib.request.urlopen(f"{base_url}/v1/stats", timeout=10) as response:
        return json.loads(response.read())


def _predicted(run: Path, frame: Path) -> float:
    """emotion-predict's P(anxious) for the frame, as a user runs it."""
    done = emotion(
        "emotion.predict", str(run), str(frame), "--format", "jsonl", "--reduce", "1",
        cwd=frame.parent,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    row = json.loads(done.stdout.strip().splitlines()[-1])
    assert row["status"] == "ok", row
    return float(row["p_anxious"])


def test_the_page_finds_the_face_itself_and_sends_no_image(
    plain_run: Path, browser: WebDriver, tmp_path: Path
) -> None:
    from emotion.facemesh.landmarker import Landmarker

    with running_server(plain_run) as base_url:
        browser.get(base_url)
        shown = _wait(browser, lambda s: s.get("mode") == "landmarks", "landmark mode")
        assert "No camera frame leaves" in shown["mode_text"], shown
        assert "No camera frame leaves this browser" in shown["privacy_text"], shown
        browser.execute_script("window.emotionProbe.record = true;")
        _wait(
            browser,
            lambda s: s.get("faces", 0) >= 20 and s["status"] in ("ok", "no_face"),
            "scored faces",
        )
        frames = browser.execute_script("return window.emotionProbe.frames;")
        shown = browser.execute_script(LOOK)
        stats = _stats(base_url)
    sent = shown["sent"]
    assert sent["binary"] == 0 and sent["binaryBytes"] == 0, sent  # no frame, no image
    assert sent["types"].get("landmarks", 0) >= 20, sent
    assert stats["image_bytes"] == 0 and stats["images"] == 0, stats
    assert stats["landmark_frames"] >= sent["types"]["landmarks"] - 1, (stats, sent)
    scored = [frame for frame in frames if frame.get("status") == "ok" and frame["landmarks"]]
    assert scored, frames
    landmarker = Landmarker()  # IMAGE mode, as the extractor and the server run it
    try:
        for number, frame in enumerate(scored[-3:]):
            png = base64.b64decode(frame["png"].split(",", 1)[1])
            rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
            assert rgb.shape == (frame["height"], frame["width"], 3)
            reading, _ = landmarker.find(rgb)
            assert reading is not None
            page = np.asarray(frame["landmarks"], dtype=np.float32)[None]
            gap = np.abs(nose_unit(page) - nose_unit(reading.landmarks[None])).max()
            assert gap < 1e-4, gap
            # Blendshapes and pose too (a pose model reads the matrix: the page sends it in
            # rows, as the Python API gives it, from tasks-vision's column-major data).
            shapes = np.abs(np.asarray(frame["blendshapes"]) - reading.blendshapes).max()
            pose = np.abs(np.asarray(frame["pose"]) - reading.pose).max()
            assert shapes < 1e-3 and pose < 1e-3 * max(1.0, float(np.abs(reading.pose).max()))
            path = tmp_path / f"frame{number}.png"
            path.write_bytes(png)
            assert frame["score"] == pytest.approx(_predicted(plain_run, path), abs=1e-4)
    finally:
        landmarker.close()


def test_the_rest_face_is_kept_across_reloads_and_forgotten_on_request(
    enrolled_run: Path, browser: WebDriver
) -> None:
    with running_server(enrolled_run) as base_url:
        browser.get(base_url)
        browser.execute_script("localStorage.clear();")
        browser.refresh()
        shown = _wait(
            browser,
            lambda s: s.get("mode") == "landmarks" and s["status"] == "no_reference",
            "a face before calibration",
        )
        assert shown["lastScore"] is None and shown["stored"] is None, shown  # refuses to score
        assert shown["forget_shown"], shown
        browser.execute_script("document.getElementById('calibrate').click();")
        shown = _wait(browser, lambda s: s["calibrated"] and s["stored"], "a reference", 30)
        stored = json.loads(shown["stored"])
        assert stored["count"] == shown["enrolled"] > 0, shown
        _wait(browser, lambda s: s["status"] == "ok", "a scored face")

        browser.refresh()  # a new page, a new connection: the server holds no reference for it
        shown = _wait(
            browser,
            lambda s: s.get("mode") == "landmarks" and s.get("frames", 0) >= 5,
            "frames after the reload",
        )
        assert shown["calibrated"] and json.loads(shown["stored"]) == stored, shown
        assert "kept in this browser" in shown["calibration_text"], shown
        _wait(browser, lambda s: s["status"] == "ok" and s["lastScore"] is not None, "a score")

        browser.execute_script("document.getElementById('forget').click();")
        shown = _wait(browser, lambda s: s["status"] == "no_reference", "calibrate first")
        assert shown["stored"] is None and not shown["calibrated"], shown
        assert "forgotten" in shown["calibration_text"], shown
        assert shown["sent"]["binary"] == 0, shown["sent"]
        assert _stats(base_url)["image_bytes"] == 0


@pytest.mark.parametrize(
    ("scripts", "blocked", "reason"),
    [
        ((NO_WEBASSEMBLY,), (), "WebAssembly"),
        # A source install where web/vendor.sh never ran: no runtime to load.
        ((), ("*/static/vendor/*",), "vision_bundle.mjs"),
    ],
    ids=["no-webassembly", "no-runtime"],
)
def test_without_the_landmarker_the_page_sends_frames_and_says_so(
    plain_run: Path, video: Path, scripts: tuple[str, ...], blocked: tuple[str, ...], reason: str
) -> None:
    with (
        running_server(plain_run) as base_url,
        _chromium(video, *scripts, blocked=blocked) as driver,
    ):
        driver.get(base_url)
        shown = _wait(
            driver, lambda s: s.get("mode") == "frames" and s["faces"] >= 3, "scored frames"
        )
        stats = _stats(base_url)
    assert "Frames mode" in shown["mode_text"] and reason in shown["mode_text"], shown
    assert "Camera frames go only to the server" in shown["privacy_text"], shown
    assert shown["sent"]["binary"] >= 3 and "landmarks" not in shown["sent"]["types"], shown
    assert stats["image_bytes"] >= shown["sent"]["binaryBytes"] > 0, (stats, shown["sent"])
