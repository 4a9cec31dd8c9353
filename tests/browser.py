"""Headless Chromium for page tests (Debian's chromium + chromium-driver; `make install-browser`)."""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest
import torch
from torchvision.io import decode_image

CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


def chromium():
    """A headless Chromium session with its console log captured, or a visible skip."""
    if not Path(CHROMEDRIVER).exists() or not (shutil.which("chromium") or Path("/usr/bin/chromium").exists()):
        pytest.skip("Chromium/chromedriver not installed (run `make install-browser`; needs Debian's apt)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    opts = webdriver.ChromeOptions()
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000", "--disable-dev-shm-usage"):
        opts.add_argument(arg)
    opts.binary_location = shutil.which("chromium") or "/usr/bin/chromium"
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=opts)


def js_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]


def screenshot_spread(driver) -> float:
    """Standard deviation of the screenshot's pixels: about 0 for a blank (one-colour) page."""
    img = decode_image(torch.frombuffer(bytearray(driver.get_screenshot_as_png()), dtype=torch.uint8))
    return img.float().std().item()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
