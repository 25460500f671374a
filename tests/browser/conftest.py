"""The browser app in real headless Chromium (Debian's `chromium`, driven by Playwright),
against a real `chatd serve --dev` process with the demo data.

Set CHATD_CHROMIUM to use another Chromium binary. Screenshots are written to the test's
temporary folder; with CHATD_UPDATE_SCREENSHOTS=1 they also replace those under docs/.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright import sync_api as sync_api

from tests.browser.driver import Pages
from tests.e2e.harness import ServerProcess

CHROMIUM = os.environ.get("CHATD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(scope="package")
def browser() -> Iterator[Any]:
    # Missing Chromium fails the suite: `make test` installs it (see .ci/run and README).
    assert Path(CHROMIUM).exists(), f"no Chromium at {CHROMIUM}: apt-get install chromium"
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A fresh server with the demo data (--dev loads it into the empty database)."""
    process = ServerProcess(db=tmp_path / "chatd.db", extra_args=("--dev",))
    process.start()
    try:
        yield process
    finally:
        process.stop()


@pytest.fixture
def pages(browser: Any, server: ServerProcess) -> Iterator[Pages]:
    opened = Pages(browser, server)
    try:
        yield opened
    finally:
        opened.close()
    assert not opened.errors, opened.errors


@pytest.fixture
def screenshot(tmp_path: Path) -> Callable[[Any, str], Path]:
    def take(page: Any, name: str) -> Path:
        path = tmp_path / name
        page.screenshot(path=str(path))
        if os.environ.get("CHATD_UPDATE_SCREENSHOTS") == "1":
            DOCS.mkdir(exist_ok=True)
            shutil.copyfile(path, DOCS / name)
        return path

    return take
