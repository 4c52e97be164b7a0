"""The webcam page in a real browser: headless Chromium, its fake camera playing a y4m of the
astronaut fixture, against `python -m emotion.serve` on tiny models trained here.

The camera loops two faces that FaceMesh finds in both, the fixture as it is and the fixture
stretched vertically, then an empty frame. The photo store's anxious photos are the stretched
ones, so the models learn to tell the two faces apart and the page's score must move when the
camera's face does.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pytest

from emotion.extract.pipeline import extract
from emotion.extract.settings import ExtractSettings
from emotion.store.io import read_store
from tests.browser import CHROMEDRIVER, CHROMIUM, chromium, wait_until
from tests.extract_tree import extract_config
from tests.serving import running_server
from tests.trained_run import train_tiny
from tests.y4m import blank_frame, face_frame, jpeg_bytes, looping_video

if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

PLAIN = face_frame(400, 400)  # the fixture face, undistorted
STRETCHED = face_frame(384, 480)  # the same face 1.25x taller than wide: another geometry
LOOP = [(PLAIN, 2.5), (STRETCHED, 2.5), (blank_frame(), 1.5)]  # seconds of each: 6.5 s
WATCH_SECONDS = 7.5  # longer than one loop
PERCENT = re.compile(r"^\d{1,3}\.\d %$")
EPOCHS = "trainer.max_epochs=60"
# The frame path: the page sends camera frames (its landmark mode, the default where the
# browser runs WebAssembly, is tests/test_page_landmarks.py's).
FRAMES = "/?send=frames"  # well under a second here; enough to separate the faces

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
        reason="needs Debian's chromium and chromium-driver "
        "(apt-get install chromium chromium-driver)",
    ),
]
pytest.importorskip("selenium", reason="the browser test needs selenium (pip install selenium)")
pytest.importorskip("mediapipe", reason="emotion-serve's FaceMesh needs the extract extra")


def _people(root: Path) -> None:
    """4 people x (2 neutral + 2 anxious) photos; the anxious ones are stretched vertically,
    each person has a slightly different face shape and size. A, B train; C, D test."""
    for index, person in enumerate("ABCD"):
        split = "train" if person in "AB" else "test"
        aspect = 1 + 0.02 * (index - 1.5)
        for number in range(4):
            anxious = number >= 2
            width = 380 + 4 * index + 2 * number if anxious else 400 + 6 * index + 3 * number
            height = min(480, round(width * aspect * (1.2 if anxious else 1.0)))
            folder = root / split / ("anxious" if anxious else "neutral")
            folder.mkdir(parents=True, exist_ok=True)
            photo = face_frame(width, height, center=(320 + 8 * index, 240))
            (folder / f"p{person}_{number}.jpg").write_bytes(jpeg_bytes(photo, quality=90))


@pytest.fixture(scope="module")
def face_store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("faces")
    _people(root / "people")
    store = root / "people.h5"
    extract(ExtractSettings.from_config(extract_config(root / "people", store)))
    assert len(read_store(store)) == 16, "FaceMesh should find every photo's face"
    return store


@pytest.fixture(scope="module")
def face_plain_run(face_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("plain") / "run"
    train_tiny(face_store, run_dir, "data.min_val_subjects=10", EPOCHS)
    return run_dir


@pytest.fixture(scope="module")
def face_enrolled_run(face_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("enrolled") / "run"
    train_tiny(face_store, run_dir, "data.baseline=enrolled", "data.min_val_subjects=10", EPOCHS)
    return run_dir


@pytest.fixture(scope="module")
def synthetic_run(tiny_store_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("synthetic") / "run"
    train_tiny(tiny_store_path, run_dir)
    return run_dir


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """One headless Chromium for the module; its camera plays LOOP over and over."""
    video = looping_video(tmp_path_factory.mktemp("camera") / "faces.y4m", LOOP)
    with chromium(video) as driver:
        yield driver


@pytest.fixture
def page(browser: WebDriver) -> Iterator[WebDriver]:
    """The browser, left on a blank page after the test: the camera and the page's retries
    stop taking CPU from the next test's training and server."""
    try:
        yield browser
    finally:
        browser.get("about:blank")


# One look at the page, taken in one turn of its JS: the state, the texts and the canvases
# agree with each other (a reply cannot land between reading two of them).
SNAPSHOT = """
const element = (id) => document.getElementById(id);
const text = (id) => element(id).textContent.trim();
const near = (id, [r, g, b]) => {  // pixels of canvas `id` close to one colour
  const canvas = element(id);
  const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let count = 0;
  for (let i = 0; i < data.length; i += 4) {
    const off = Math.abs(data[i] - r) + Math.abs(data[i + 1] - g) + Math.abs(data[i + 2] - b);
    if (data[i + 3] > 128 && off < 60) count += 1;
  }
  return count;
};
return {
  ...(window.emotionState || {}),
  status_text: text('status'), score_text: text('score'), label_text: text('label'),
  score_class: element('score').className, fps_text: text('fps'),
  latency_text: text('latency'), notice_text: text('notice'), error_text: text('error'),
  calibration_text: text('calibration'), calibrate_text: text('calibrate'),
  calibrate_enabled: !element('calibrate').disabled,
  mesh_dots: near('mesh', [120, 255, 200]),  // the face's dots (app.js draws them so)
  chart_line: near('chart', [15, 118, 110]),  // the score's line
};
"""


def _shown(driver: WebDriver) -> dict[str, Any]:
    return driver.execute_script(SNAPSHOT)


def _wait_shown(
    driver: WebDriver, test: Callable[[dict[str, Any]], bool], what: str, timeout: float = 30.0
) -> dict[str, Any]:
    """Poll the page until `test` holds; that look at it. On time-out: what it showed, why."""
    return wait_until(driver, _shown, test, what, timeout)


def _watch(driver: WebDriver, seconds: float) -> list[dict[str, Any]]:
    """Looks at the page every 0.1 s for `seconds`."""
    seen = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        seen.append(_shown(driver))
        time.sleep(0.1)
    return seen


def _scores(seen: list[dict[str, Any]]) -> list[float]:
    return [float(shown["lastScore"]) for shown in seen if shown.get("lastScore") is not None]


def _displayed(driver: WebDriver, element_id: str) -> bool:
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id).is_displayed()


def _predicted(base_url: str, frame: np.ndarray) -> float:
    """P(anxious) of one camera frame from the server's REST API."""
    request = urllib.request.Request(
        f"{base_url}/v1/predict", data=jpeg_bytes(frame), headers={"Content-Type": "image/jpeg"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return float(json.loads(response.read())["score"])


def _screenshot(driver: WebDriver, path: Path, *, docs: bool = False) -> None:
    """Into tmp_path always; the docs' one also where EMOTION_SCREENSHOT says
    (docs/images/serve-page.png: `EMOTION_SCREENSHOT=docs/images/serve-page.png pytest ...`)."""
    driver.save_screenshot(str(path))
    target = os.environ.get("EMOTION_SCREENSHOT")
    if docs and target:
        Path(target).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(path, target)


def test_the_page_scores_the_face_and_follows_it(
    face_plain_run: Path, page: WebDriver, tmp_path: Path
) -> None:
    with running_server(face_plain_run) as base_url:
        plain, stretched = _predicted(base_url, PLAIN), _predicted(base_url, STRETCHED)
        assert stretched - plain > 0.2, "the model should tell the camera's two faces apart"
        page.get(f"{base_url}{FRAMES}")
        shown = _wait_shown(
            page, lambda s: s.get("status") == "ok" and s["mesh_dots"] > 200, "a scored face"
        )
        assert shown["faces"] > 0 and shown["status_text"] == "face", shown
        assert PERCENT.match(shown["score_text"]) and shown["score_class"] == "score", shown
        assert shown["label_text"].lower() in {"neutral", "anxious"}, shown
        assert not _displayed(page, "synthetic-banner")  # real photos: not synthetic
        assert not _displayed(page, "calibrate")  # no baseline, no calibration
        seen = _watch(page, WATCH_SECONDS)
        _screenshot(page, tmp_path / "plain.png")

    last = seen[-1]
    assert re.match(r"^\d+\.\d fps$", last["fps_text"]), last
    assert re.match(r"^\d+ ms$", last["latency_text"]), last
    assert last["frames"] >= 20, last  # one frame in flight still makes several a second
    assert 0.5 * last["frames"] <= last["faces"] < last["frames"], last
    assert last["lastSmoothed"] is not None and not last["calibrated"], last
    assert any(shown["chart_line"] > 50 for shown in seen), "no score line on the chart"
    scores = _scores(seen)
    middle = (plain + stretched) / 2
    assert min(scores) < middle < max(scores), (plain, stretched, sorted(set(scores)))
    assert max(scores) - min(scores) > (stretched - plain) / 2
    # The empty frames: "no face", the last smoothed score kept but greyed, no frame score.
    empty = [shown for shown in seen if shown["status"] == "no_face"]
    assert empty, "the page never showed the camera's empty frames"
    for shown in empty:
        assert shown["status_text"] == "no face" and shown["label_text"] == "No face found"
        assert "stale" in shown["score_class"] and PERCENT.match(shown["score_text"]), shown
        assert shown["lastScore"] is None and shown["mesh_dots"] == 0, shown


def test_a_baseline_model_scores_only_after_calibration(
    face_enrolled_run: Path, page: WebDriver, tmp_path: Path
) -> None:
    with running_server(face_enrolled_run) as base_url:
        page.get(f"{base_url}{FRAMES}")
        shown = _wait_shown(
            page,
            lambda s: s.get("status") == "no_reference" and s["calibrate_enabled"],
            "a face before calibration",
        )
        assert shown["status_text"] == "calibrate first", shown
        assert shown["score_text"] == "—" and shown["label_text"] == "Calibrate first", shown
        assert shown["lastScore"] is None and not shown["calibrated"], shown
        assert _displayed(page, "calibrate") and shown["calibrate_text"] == "Calibrate"

        page.execute_script("document.getElementById('calibrate').click();")
        _wait_shown(page, lambda s: s["status"] == "calibrating", "calibration", 5)
        shown = _wait_shown(page, lambda s: s["calibrated"], "a reference", 20)
        assert shown["enrolled"] > 0, shown
        assert shown["calibration_text"] == f"Calibrated on {shown['enrolled']} faces.", shown
        assert shown["calibrate_text"] == "Recalibrate", shown
        # Longer for the docs' screenshot, so that its chart shows a few changes of face.
        seen = _watch(page, 20.0 if os.environ.get("EMOTION_SCREENSHOT") else WATCH_SECONDS)
        shown = _wait_shown(page, lambda s: s["status"] == "ok", "a scored face", 5)
        assert shown["status_text"] == "face" and PERCENT.match(shown["score_text"]), shown
        _screenshot(page, tmp_path / "calibrated.png", docs=True)

    # The reference is whatever the camera showed for 3 s (either face or both); against
    # any one reference the two faces score apart (by 0.3-0.45 in the runs so far).
    scores = _scores(seen)
    assert max(scores) - min(scores) > 0.05, sorted(set(scores))


def test_a_synthetic_model_says_so(synthetic_run: Path, page: WebDriver) -> None:
    with running_server(synthetic_run) as base_url:
        page.get(f"{base_url}{FRAMES}")
        _wait_shown(page, lambda s: s.get("frames", 0) > 0, "a reply")  # the model is loaded
        assert _displayed(page, "synthetic-banner")
        banner = page.execute_script(
            "return document.getElementById('synthetic-banner').textContent;"
        )
        assert "SYNTHETIC landmarks" in banner and "say little" in banner, banner
        # What the score rests on, beside the banner: the data, its people, its test score.
        trained_on = page.execute_script(
            "return document.getElementById('trained-on').textContent;"
        )
        assert "Trained on SYNTHETIC landmarks" in trained_on and "test" in trained_on
        assert "balanced accuracy" in trained_on, trained_on
