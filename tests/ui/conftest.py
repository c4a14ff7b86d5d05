"""Browser tests of the dashboard: Playwright drives Debian's Chromium (headless) against a
real deployment: `conveyor api` and `conveyor worker` processes (tests/e2e/system.py) on
the test process's private redis-server.

One deployment per test module keeps the suite fast; tests stay apart by using queues of
their own. Each test gets a fresh browser context (its own sessionStorage), and fails when
the page logged an error, hit a Content-Security-Policy violation, or opened a dialog.
Screenshots go to `.artifacts/ui/` under the repository.
"""

from __future__ import annotations

import os
import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, ConsoleMessage, Dialog, Page, expect, sync_playwright

from tests.e2e.system import System
from tests.helpers.redis_server import RedisServer

CHROMIUM = os.environ.get("CONVEYOR_CHROMIUM", "/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[2] / ".artifacts" / "ui"
TOKEN = "ui-test-token-0123456789abcdef"
EXPECTED_4XX = "Failed to load resource: the server responded with a status of 4"
VIEWPORT = {"width": 1366, "height": 768}  # a laptop screen

expect.set_options(timeout=15_000)  # a deadline for every expectation: they poll until it


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """One browser per module: Playwright's synchronous API keeps an event loop running in
    the test thread while it is open, which async tests that follow in this process (the
    scale test, other suites under pytest-xdist) cannot share."""
    with sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox cannot start.
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
        )
        yield instance
        instance.close()


def deployment(redis_server: RedisServer, workdir: Path, **env: str) -> Iterator[System]:
    """API + one worker (queues `default` and `work`) + scheduler under a fresh prefix."""
    # The tests seed queues and look at them at once: no statistics cache, whose snapshot
    # may be up to 2 x stats_cache_seconds old (tests/api/test_queue_stats.py covers it).
    env = {"CONVEYOR_STATS_CACHE_SECONDS": "0", **env}
    system = System(redis_server.url, f"ui{uuid.uuid4().hex[:10]}", workdir, env_overrides=env)
    try:
        # Worker and scheduler first: they start up while the API is awaited.
        system.start("worker", "--queues", "default,work", "--concurrency", "4")
        system.start("scheduler")
        system.start_api()
        yield system
    finally:
        system.stop_all()


@pytest.fixture(scope="module")
def system(redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    yield from deployment(redis_server, tmp_path_factory.mktemp("ui"))


@dataclass
class Watch:
    """What the page did that a test must not let pass."""

    errors: list[str] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)

    def console(self, message: ConsoleMessage) -> None:
        # Chromium logs every 4xx answer; the page expects some (404 job, 401 sign-in).
        expected = message.text.startswith(EXPECTED_4XX)
        if (message.type == "error" and not expected) or "Content Security Policy" in message.text:
            self.errors.append(message.text)

    def dialog(self, dialog: Dialog) -> None:
        self.dialogs.append(f"{dialog.type}: {dialog.message}")
        dialog.dismiss()


@pytest.fixture
def watch() -> Watch:
    return Watch()


@pytest.fixture
def page(browser: Browser, watch: Watch) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    context.set_default_timeout(15_000)
    tab = context.new_page()
    tab.on("console", watch.console)
    tab.on("pageerror", lambda error: watch.errors.append(f"page error: {error}"))
    tab.on("dialog", watch.dialog)
    try:
        yield tab
    finally:
        context.close()
    assert watch.dialogs == [], "the page opened a dialog"
    assert watch.errors == [], "the page logged errors"


def screenshot(page: Page, name: str) -> Path:
    """Save a full-page screenshot as a test artifact; prints where."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{re.sub(r'[^a-z0-9-]+', '-', name.lower())}.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path
