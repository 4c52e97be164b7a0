"""Debian's headless Chromium with a fake camera, as every real-browser test drives it: the
flags of the page checks (emotion/bench/chromium.py), plus the console log and blocked URLs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emotion.bench.chromium import CHROMEDRIVER, CHROMIUM, FLAGS, wait_until

__all__ = ["CHROMEDRIVER", "CHROMIUM", "chromium", "wait_until"]


@contextmanager
def chromium(video: Path, *scripts: str, blocked: tuple[str, ...] = ()) -> Iterator[Any]:
    """A headless Chromium whose camera plays the y4m `video` in a loop; `scripts` run in
    every page before its own, and `blocked` URL patterns fail as if the files were not there."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    os.environ.setdefault("SE_AVOID_STATS", "true")  # Selenium Manager phones home otherwise
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in (*FLAGS, f"--use-file-for-fake-video-capture={video}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(str(CHROMEDRIVER)))
    try:
        for script in scripts:
            driver.execute_cdp_cmd("Page.addScriptToEvaluateOnNewDocument", {"source": script})
        if blocked:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.setBlockedURLs", {"urls": list(blocked)})
        yield driver
    finally:
        driver.quit()
