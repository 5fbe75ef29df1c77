"""Browser tests' shared parts: Debian's Chromium driven by Playwright, and screenshot checks."""

import io
import os
import shutil

import numpy as np
import pytest
from PIL import Image

SHOTS = os.environ.get("MODELDX_SCREENSHOTS")  # a folder to keep the screenshots in, to look at them


def chromium_path() -> str:
    path = os.environ.get("MODELDX_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("browser tests need Chromium: install Debian's package (apt-get install chromium) "
                    "or set MODELDX_CHROMIUM to a Chromium binary")
    return path


def not_blank(png: bytes) -> None:
    img = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    colours = np.unique(img.reshape(-1, 3), axis=0).shape[0]
    assert img.std() > 10 and colours > 50, f"the screenshot looks blank ({colours} colours)"


def save(png: bytes, name: str) -> None:
    if SHOTS:
        os.makedirs(SHOTS, exist_ok=True)
        with open(os.path.join(SHOTS, name), "wb") as f:
            f.write(png)
