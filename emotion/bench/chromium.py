"""Debian's headless Chromium with a fake camera, as the page checks drive it: the same flags
as the browser tests (tests/browser.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--use-fake-ui-for-media-stream",
    "--use-fake-device-for-media-stream",
    "--window-size=1280,900",
)


@contextmanager
def chromium(video: Path, *scripts: str) -> Iterator[Any]:
    """A headless Chromium whose camera plays the y4m `video` in a loop; `scripts` run in
    every page before its own. The driver's `service` is reachable as `driver.service`."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager phones home otherwise
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--use-file-for-fake-video-capture={video}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        for script in scripts:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
        yield driver
    finally:
        driver.quit()


def wait_until(
    driver: Any,
    look: Callable[[Any], dict[str, Any]],
    test: Callable[[dict[str, Any]], bool],
    what: str,
    timeout: float = 60.0,
    every: float = 0.1,
) -> dict[str, Any]:
    """Poll `look(driver)` until `test` holds on it and return that look; past `timeout`, a
    TimeoutError with the last look and the page's last console lines."""
    deadline = time.monotonic() + timeout
    while True:
        shown = look(driver)
        if test(shown):
            return shown
        if time.monotonic() > deadline:
            try:
                logs = [entry["message"] for entry in driver.get_log("browser")][-10:]
            except Exception:  # noqa: BLE001 (a driver without a console log)
                logs = []
            raise TimeoutError(f"the page did not show {what} in {timeout:g} s: {shown}, {logs}")
        time.sleep(every)


def still_camera(path: Path, rgb: Any, frames: int = 30, fps: int = 15) -> Path:
    """A 640x480 y4m showing one RGB picture, fitted whole on a grey canvas (Chromium loops
    it): a still face the page finds as it would a camera's."""
    import cv2
    import numpy as np
    from PIL import Image

    picture = Image.fromarray(np.asarray(rgb, dtype=np.uint8))
    picture.thumbnail((640, 480))
    canvas = Image.new("RGB", (640, 480), (128, 128, 128))
    canvas.paste(picture, ((640 - picture.width) // 2, (480 - picture.height) // 2))
    planes = cv2.cvtColor(np.asarray(canvas), cv2.COLOR_RGB2YUV_I420).tobytes()
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W640 H480 F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + planes)
    return path
