"""The dashboard in a real browser against a real API, worker and scheduler: live counts,
job detail and history, cancel and retry, search by id, paging, bulk actions, workers,
and attacker-controlled text shown as text."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import httpx
from playwright.sync_api import Locator, Page, expect

from tests.e2e.system import System
from tests.ui import seeding
from tests.ui.conftest import screenshot

# Markup in a payload and in an error message: if any of it ran, window.__xss would be set
# (or a dialog would open, which the `page` fixture fails on).
XSS = '<img src=x onerror="window.__xss=1;alert(1)"><script>window.__xss=2</script>'


def unique(name: str) -> str:
    return f"{name}-{uuid.uuid4().hex[:8]}"


def post_batch(system: System, jobs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Create jobs in one request (POST /jobs/batch)."""
    response = httpx.post(f"{system.api}/jobs/batch", json={"jobs": jobs}, timeout=10)
    assert response.status_code == 201, response.text
    created: list[dict[str, Any]] = response.json()["jobs"]
    return created


def row(page: Page, queue: str, field: str) -> Locator:
    return page.locator(f'tr[data-queue="{queue}"] [data-field="{field}"]')


def test_overview_counts_change_live(page: Page, system: System) -> None:
    idle = unique("idle")  # no worker consumes it: its jobs keep waiting
    later = unique("later")
    system.post_job("echo", {"warm": True})
    page.goto(system.api + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.locator(f'tr[data-queue="{idle}"]')).to_have_count(0)

    post_batch(
        system,
        [{"type": "echo", "payload": i, "queue": idle} for i in range(2)]
        + [{"type": "echo", "payload": i, "queue": later, "delay_seconds": 3600} for i in range(3)],
    )

    expect(row(page, idle, "waiting")).to_have_text("2")  # appears without a reload
    expect(row(page, idle, "oldest_waiting_age_seconds")).not_to_have_text("—")
    expect(row(page, later, "scheduled")).to_have_text("3")
    system.post_job("echo", {"i": 2}, queue=idle)
    expect(row(page, idle, "waiting")).to_have_text("3")
    # The worker finished the echo job: the default queue's throughput shows it.
    expect(row(page, "default", "finished-total")).not_to_have_text("0")
    expect(page.locator('tr[data-queue="default"] svg.sparkline')).to_have_count(1)
    screenshot(page, "overview")


def test_a_failed_job_shows_its_history_and_runs_again_on_retry(page: Page, system: System) -> None:
    job = system.post_job(
        "fail", {"times": 9, "message": "disk full"}, queue="work", max_attempts=2
    )
    system.wait_status(job["id"], "failed")
    page.goto(f"{system.api}/#/jobs/{job['id']}")

    expect(page.locator("#job-detail [data-status]").first).to_have_text("failed")
    history = page.locator("#job-history > li")
    expect(history).to_have_count(2)
    expect(history.nth(0)).to_contain_text("Attempt 1")
    expect(history.nth(1)).to_contain_text("failed")
    expect(history.nth(1).locator(".attempt-error")).to_contain_text("disk full")
    expect(page.locator("#job-last-error")).to_contain_text("disk full")
    expect(page.locator('[data-field="correlation id"]')).to_have_text(job["correlation_id"])
    screenshot(page, "job-detail")

    page.get_by_role("button", name="Retry job").click()
    expect(page.locator("#announcer")).to_have_text("Job queued again.")
    # It ran twice more and failed again; the history keeps every attempt.
    expect(history).to_have_count(4, timeout=20_000)
    expect(page.locator("#job-detail [data-status]").first).to_have_text("failed")


def test_cancel_a_running_job_from_the_page(page: Page, system: System) -> None:
    job = system.post_job("sleep", {"seconds": 60}, queue="work")
    system.wait_status(job["id"], "running")
    page.goto(f"{system.api}/#/jobs/{job['id']}")
    expect(page.locator("#job-detail [data-status]").first).to_have_text("running")

    page.get_by_role("button", name="Cancel job").click()

    expect(page.locator("#job-detail [data-status]").first).to_have_text("canceled")
    expect(page.locator("#job-history > li").last).to_contain_text("canceled")
    assert system.get_job(job["id"])["status"] == "canceled"


def test_search_by_id(page: Page, system: System) -> None:
    job = system.post_job("echo", {"needle": "found-by-id"})
    page.goto(system.api + "/")
    search = page.get_by_label("Job id")
    search.fill(job["id"].lower())  # ids are case-insensitive to type
    search.press("Enter")
    expect(page).to_have_url(re.compile(f"#/jobs/{job['id']}$"))
    expect(page.locator("#job-payload")).to_contain_text("found-by-id")

    missing = "0" * 26
    search.fill(missing)
    search.press("Enter")
    expect(page.locator("#job-missing")).to_have_text(f"No job has the id {missing}.")
    search.fill("not-an-id")
    search.press("Enter")
    assert search.evaluate("input => input.validity.valid") is False
    expect(page).to_have_url(re.compile(f"#/jobs/{missing}$"))


def test_jobs_are_listed_a_page_at_a_time_with_filters(page: Page, system: System) -> None:
    queue = unique("pages")
    post_batch(
        system,
        [{"type": "echo", "payload": i, "queue": queue, "delay_seconds": 3600} for i in range(30)],
    )
    page.goto(f"{system.api}/#/jobs")
    page.get_by_label("Queue").select_option(queue)
    page.get_by_label("Status").select_option("scheduled")
    page.get_by_role("button", name="Apply").click()

    rows = page.locator("#jobs-table tbody tr")
    expect(rows).to_have_count(25)
    expect(rows.first).to_contain_text("scheduled")
    screenshot(page, "jobs")
    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(5)
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="First page").click()
    expect(rows).to_have_count(25)

    page.get_by_label("Type").fill("other.type")
    page.get_by_role("button", name="Apply").click()
    expect(page.locator("#no-jobs")).to_be_visible()


def test_a_queues_page_shows_its_limits(page: Page, system: System) -> None:
    queue = unique("limited")
    for key, settings in (("queue", {"max_running": 2}), ("type:echo", {"max_per_second": 3})):
        response = httpx.put(f"{system.api}/queues/{queue}/limits/{key}", json=settings, timeout=10)
        assert response.status_code == 201, response.text
    post_batch(system, [{"type": "echo", "queue": queue, "delay_seconds": 3600}])
    page.goto(f"{system.api}/#/jobs?queue={queue}")
    rows = page.locator("#limits-table tbody tr")
    expect(rows).to_have_count(2)
    limit = page.locator('#limits-table tr[data-limit="queue"]')
    expect(limit.locator('[data-field="max_running"]')).to_have_text("2")
    expect(limit.locator('[data-field="held"]')).to_have_text("0")
    rate = page.locator('#limits-table tr[data-limit="type:echo"]')
    expect(rate.locator('[data-field="max_per_second"]')).to_have_text("3")
    page.goto(f"{system.api}/#/jobs")
    expect(page.locator("#limits-table")).to_have_count(0)


def test_markup_in_a_payload_and_an_error_is_shown_as_text(page: Page, system: System) -> None:
    job = system.post_job(
        "fail", {"times": 1, "message": XSS, "note": XSS}, queue="work", max_attempts=1
    )
    system.wait_status(job["id"], "failed")
    page.goto(f"{system.api}/#/jobs/{job['id']}")

    expect(page.locator("#job-payload")).to_contain_text(json.dumps(XSS))  # as JSON
    expect(page.locator("#job-last-error")).to_contain_text(XSS)
    expect(page.locator("#job-history .attempt-error")).to_contain_text(XSS)
    assert page.locator("#main img, #main script").count() == 0
    page.goto(f"{system.api}/#/jobs?queue=work&status=failed")
    expect(page.locator(f'tr[data-job="{job["id"]}"] .error-cell')).to_contain_text(XSS)
    assert page.locator("#main img, #main script").count() == 0
    assert page.evaluate("window.__xss") is None
    # The page's one way to build elements refuses event handler attributes outright.
    refused = page.evaluate(
        """async () => {
            const { h } = await import("./ui/static/js/dom.js");
            try { h("img", { src: "x", onerror: "window.__xss = 3" }); return false; }
            catch (error) { return error.message; }
        }"""
    )
    assert "refused" in refused
    assert page.evaluate("window.__xss") is None


def test_retry_and_purge_every_failed_job_of_a_queue(page: Page, system: System) -> None:
    queue = unique("bulk")
    first = seeding.failed_jobs(system.redis_url, system.prefix, queue, 3, "RuntimeError: x")
    page.goto(system.api + "/")
    expect(row(page, queue, "failed")).to_have_text("3")

    page.get_by_role("button", name=f"Retry all failed jobs of {queue}").click()
    dialog = page.get_by_role("dialog")
    expect(dialog).to_contain_text(f"Run every failed job of the queue {queue} again?")
    dialog.get_by_role("button", name="Cancel").click()
    expect(dialog).to_be_hidden()
    expect(row(page, queue, "failed")).to_have_text("3")

    page.get_by_role("button", name=f"Retry all failed jobs of {queue}").click()
    dialog.get_by_role("button", name="Retry all").click()
    expect(page.locator("#announcer")).to_have_text(f"{queue}: 3 failed jobs retried.")
    expect(row(page, queue, "failed")).to_have_text("0")
    expect(row(page, queue, "waiting")).to_have_text("3")  # nobody consumes this queue

    # Its waiting jobs would be taken first: purge in a queue of its own.
    queue = unique("purge")
    second = seeding.failed_jobs(system.redis_url, system.prefix, queue, 2, "RuntimeError: y")
    expect(row(page, queue, "failed")).to_have_text("2")
    page.get_by_role("button", name=f"Purge the failed jobs of {queue}").click()
    expect(dialog).to_contain_text("cannot be retried afterwards")
    dialog.get_by_role("button", name="Purge").click()
    expect(page.locator("#announcer")).to_have_text(f"{queue}: 2 failed jobs purged.")
    expect(row(page, queue, "failed")).to_have_text("0")
    for job_id in second:
        response = httpx.get(f"{system.api}/jobs/{job_id}", timeout=10)
        assert response.status_code == 404
    assert system.get_job(first[0])["status"] == "pending"


def test_workers_page_shows_live_and_stale_workers(page: Page, system: System) -> None:
    seeding.late_worker(system.redis_url, system.prefix, "w-late", seconds_late=30)
    page.goto(f"{system.api}/#/workers")
    table = page.locator("#workers-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    late = table.locator('tr[data-worker="w-late"]')
    expect(late).to_contain_text("stale")
    live = table.locator("tbody tr:not([data-worker='w-late'])")
    expect(live).to_contain_text("live")
    expect(live).to_contain_text("default, work")
    screenshot(page, "workers")


def test_keyboard_reaches_navigation_and_actions(page: Page, system: System) -> None:
    page.goto(system.api + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    page.keyboard.press("Tab")
    expect(page.locator("#skip-link")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#main")).to_be_focused()
    # Every form control has a label.
    unlabeled = page.evaluate(
        """() => [...document.querySelectorAll("input, select, textarea")]
            .filter((c) => c.labels.length === 0 && !c.getAttribute("aria-label"))
            .map((c) => c.id || c.name)"""
    )
    assert unlabeled == []
    page.get_by_role("link", name="Workers").focus()
    page.keyboard.press("Enter")
    expect(page.get_by_role("heading", name="Workers")).to_be_focused()
    expect(page.get_by_role("link", name="Workers")).to_have_attribute("aria-current", "page")


def test_no_prompt_when_the_api_has_no_tokens(page: Page, system: System) -> None:
    page.goto(system.api + "/")
    expect(page.get_by_role("heading", name="Overview")).to_be_visible()
    expect(page.get_by_role("button", name="Forget token")).to_be_hidden()
    expect(page.get_by_label("API token")).to_have_count(0)


def test_a_queue_is_paused_and_resumed_from_the_overview(page: Page, system: System) -> None:
    queue = unique("gate")
    system.post_job("echo", 1, queue=queue)
    page.goto(system.api + "/")
    button = page.get_by_role("button", name=f"Pause the queue {queue}: none of its jobs starts")
    button.click()
    dialog = page.locator("#confirm-dialog")
    dialog.get_by_role("button", name="Pause").click()
    expect(row(page, queue, "paused")).to_be_visible()
    assert httpx.get(f"{system.api}/queues/{queue}", timeout=10).json()["paused"] is True
    page.get_by_role("button", name=f"Resume the queue {queue}: its jobs start again").click()
    expect(row(page, queue, "paused")).to_be_hidden()
    assert httpx.get(f"{system.api}/queues/{queue}", timeout=10).json()["paused"] is False


def test_schedules_page_lists_schedules_and_links_their_last_job(
    page: Page, system: System
) -> None:
    name = unique("tick")
    response = httpx.put(
        f"{system.api}/schedules/{name}",
        json={"type": "echo", "every_seconds": 1, "queue": unique("sched")},
        timeout=10,
    )
    assert response.status_code == 201, response.text
    page.goto(f"{system.api}/#/schedules")
    expect(page.get_by_role("heading", name="Schedules")).to_be_visible()
    scheduled = page.locator(f'#schedules-table tr[data-schedule="{name}"]')
    expect(scheduled).to_contain_text("every 1 s")
    link = scheduled.locator("a")
    expect(link).to_have_count(1, timeout=15_000)  # the scheduler fired it
    link.click()
    expect(page.get_by_role("heading", name=re.compile("Job"))).to_be_visible()
    assert (
        httpx.delete(
            f"{system.api}/schedules/{name}", headers={"Content-Type": "application/json"}
        ).status_code
        == 204
    )
