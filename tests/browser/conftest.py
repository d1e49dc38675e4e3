"""Fixtures of the browser tests: a headless Chromium (cleaned up even on failure), a folder
of screenshots that the test run keeps (``test-artifacts/screenshots/<test>/``), and the
suite's server settings with a short presence grace (a user who disconnects reads as
offline, and their contacts get ``presence``, PRESENCE_GRACE seconds later, not 5 s)."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shutil
from collections.abc import AsyncIterator, Generator
from pathlib import Path
from typing import Any

import pytest

from chatd.config import Config
from tests.browser.cdp import Browser, Page, find_chromium
from tests.conftest import REPO, t

ARTIFACTS = Path(os.environ.get("CHATD_ARTIFACTS", REPO / "test-artifacts"))
PRESENCE_GRACE = t(0.5)


@pytest.fixture
def config(config: Config) -> Config:
    """The suite's config (tests/conftest.py), with PRESENCE_GRACE."""
    return dataclasses.replace(config, presence_grace=PRESENCE_GRACE)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: Any) -> Generator[None, Any, None]:
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)


class Shots:
    """Numbered screenshots of one test: ``shots.take(page, "register")``."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.n = 0

    async def take(self, page: Page, step: str, full_page: bool = False) -> Path:
        self.n += 1
        return await page.screenshot(self.folder / f"{self.n:02d}-{page.name}-{step}.png",
                                     full_page)


@pytest.fixture
def shots(request: pytest.FixtureRequest) -> Shots:
    name = re.sub(r"[^A-Za-z0-9_.-]", "_", request.node.name)
    folder = ARTIFACTS / "screenshots" / name
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return Shots(folder)


@pytest.fixture
async def browser(request: pytest.FixtureRequest, shots: Shots) -> AsyncIterator[Browser]:
    executable = find_chromium()
    if executable is None:
        pytest.skip("no Chromium: apt-get install -y chromium fonts-wqy-microhei "
                    "(or set CHATD_CHROMIUM)")
    b = Browser(executable)
    try:
        await b.start()
        yield b
        failed = getattr(request.node, "rep_call", None)
        if failed is not None and failed.failed:
            for page in b.pages:
                with contextlib.suppress(Exception):  # the page may be why it failed
                    await shots.take(page, "FAILED", full_page=True)
    finally:
        await b.close()
