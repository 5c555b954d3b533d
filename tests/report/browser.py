"""A headless Chromium driven by Selenium, with its console and network logs.

Uses Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); without them a
test skips on a laptop and fails under ``CI=true``. The driver binary is given explicitly, so
Selenium Manager never goes to the network to look for one.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service


def _missing(reason: str) -> None:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"headless Chromium is required under CI=true: {reason}")
    pytest.skip(reason)


@contextmanager
def chromium(width: int = 1280, height: int = 1600) -> Iterator[webdriver.Chrome]:
    """A headless Chromium with browser-console and performance (network) logging on."""
    binary = shutil.which("chromium")
    driver_path = shutil.which("chromedriver")
    if binary is None or driver_path is None:
        _missing("install chromium and chromium-driver (apt-get install chromium chromium-driver)")
    options = Options()
    options.binary_location = str(binary)
    for arg in (
        "--headless=new",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        f"--window-size={width},{height}",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ):
        options.add_argument(arg)
    if os.geteuid() == 0:
        options.add_argument("--no-sandbox")  # Chromium refuses to run as root with a sandbox
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=str(driver_path)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def console_errors(driver: webdriver.Chrome) -> list[str]:
    """Console messages at level SEVERE since the last call."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def requested_urls(driver: webdriver.Chrome) -> list[str]:
    """URLs the page asked the network for since the last call (CDP Network events)."""
    urls = []
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def resource_entries(driver: webdriver.Chrome) -> list[str]:
    """What the page loaded besides itself, as the Performance API saw it."""
    names = driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name)"
    )
    return list(names)


def full_page_screenshot(driver: webdriver.Chrome, path: Path) -> Path:
    """The whole page (beyond the window) as a PNG at ``path``."""
    size = driver.execute_script(
        "return [document.documentElement.scrollWidth, document.documentElement.scrollHeight]"
    )
    shot = driver.execute_cdp_cmd(
        "Page.captureScreenshot",
        {
            "format": "png",
            "captureBeyondViewport": True,
            "clip": {"x": 0, "y": 0, "width": size[0], "height": size[1], "scale": 1},
        },
    )
    path.write_bytes(base64.b64decode(shot["data"]))
    return path
