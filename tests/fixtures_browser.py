"""Pytest fixtures for the console's browser tests (registered from conftest.py via
pytest_plugins): Debian's Chromium driven by Playwright, one browser per module, one page
per test that fails on any Content-Security-Policy refusal, and a token login.

Modules that use them skip with `NEEDS_CHROMIUM` when `/usr/bin/chromium` is missing
(`apt-get install chromium`; Playwright's own browser download is not used).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = Path("/usr/bin/chromium")
NEEDS_CHROMIUM = pytest.mark.skipif(not CHROMIUM.exists(), reason=(
    "Debian's Chromium is not installed at /usr/bin/chromium: `apt-get install chromium`"))


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")
    started = time.monotonic()
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM),
                                     args=["--no-sandbox", "--disable-gpu"])
        print(f"chromium started in {time.monotonic() - started:.1f}s")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.csp_errors = []  # what the console printed about a refused script or style
    page.on("console", lambda m: page.csp_errors.append(m.text)
            if "Content Security Policy" in m.text else None)
    yield page
    context.close()
    assert page.csp_errors == []


def login(page: Any, world: Any, who: str) -> None:
    """Log in with the token ``world.tokens[who]`` on the console at ``world.base``."""
    page.goto(world.base + "/")
    page.get_by_test_id("token").fill(world.tokens[who])
    page.get_by_test_id("login").click()
    page.get_by_test_id("who").wait_for()
