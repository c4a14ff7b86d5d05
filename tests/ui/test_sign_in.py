"""The token prompt of the dashboard when the API has tokens configured: the page itself
loads without one, every data call needs one, and the token is kept for the tab only."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.e2e.system import System
from tests.helpers.redis_server import RedisServer
from tests.ui.conftest import TOKEN, screenshot

READ_TOKEN = "ui-read-token-0123456789abcdef"


@pytest.fixture(scope="module")
def guarded(
    redis_server: RedisServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[System]:
    """An API alone (no worker is needed), with a full-access and a read-only token."""
    workdir: Path = tmp_path_factory.mktemp("ui-auth")
    prefix = f"uiauth{uuid.uuid4().hex[:10]}"
    env = {"CONVEYOR_API_TOKENS": TOKEN, "CONVEYOR_API_READ_TOKENS": READ_TOKEN}
    system = System(redis_server.url, prefix, workdir, env_overrides=env)
    system.token = TOKEN
    try:
        system.start_api()
        yield system
    finally:
        system.stop_all()


def test_the_token_is_asked_for_once_and_kept_for_the_tab(page: Page, guarded: System) -> None:
    job = guarded.post_job("echo", {"hello": "world"})
    page.goto(guarded.api + "/")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    field = page.get_by_label("API token")
    expect(field).to_be_focused()
    screenshot(page, "sign-in")

    field.fill("not-the-right-token-at-all")
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#token-refused")).to_have_text("The API did not accept this token.")

    page.get_by_label("API token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator('tr[data-queue="default"] [data-field="waiting"]')).to_have_text("1")

    page.reload()  # same tab: no prompt again
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.get_by_role("link", name="Jobs").click()
    expect(page.locator(f'tr[data-job="{job["id"]}"]')).to_have_count(1)

    page.get_by_role("button", name="Forget token").click()
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.locator("#token-refused")).to_have_count(0)
    assert page.evaluate("sessionStorage.length") == 0


def test_a_read_only_token_sees_everything_and_its_actions_are_refused(
    page: Page, guarded: System
) -> None:
    job = guarded.post_job("echo", {"later": True}, queue="ro", delay_seconds=3600)
    page.goto(f"{guarded.api}/#/jobs/{job['id']}")
    page.get_by_label("API token").fill(READ_TOKEN)
    page.get_by_role("button", name="Sign in").click()
    expect(page.locator("#job-detail [data-status]").first).to_have_text("scheduled")

    page.get_by_role("button", name="Cancel job").click()

    expect(page.locator("#announcer")).to_have_text(
        "Not done: this token may only read (GET and HEAD requests)"
    )
    expect(page.get_by_role("button", name="Cancel job")).to_be_enabled()
    assert guarded.get_job(job["id"])["status"] == "scheduled"
