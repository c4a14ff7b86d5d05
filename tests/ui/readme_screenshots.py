"""Takes the README's pictures of the dashboard: `.venv/bin/python -m tests.ui.readme_screenshots`.

Starts a private redis-server and a small deployment (API, one worker, scheduler), gives
it some work (mail being sent, reports running, jobs that failed, a queue nobody consumes),
and saves the overview and the jobs page to docs/img/. A real workload would need a
quarter of an hour to draw the throughput sparklines, so the counts of the past minutes
are written into the throughput hashes directly; the current minute's are real.
"""

from __future__ import annotations

import random
import tempfile
import uuid
from pathlib import Path

import redis
from playwright.sync_api import expect, sync_playwright

from conveyor.store.keys import Keys
from conveyor.store.throughput import MINUTE_MS, SLOTS
from tests.e2e.system import System
from tests.helpers.redis_server import RedisServer
from tests.helpers.wait import eventually
from tests.ui.conftest import CHROMIUM, VIEWPORT

OUT = Path(__file__).resolve().parents[2] / "docs" / "img"


def past_minutes(client: redis.Redis, keys: Keys, queue: str, rate: int) -> None:
    seconds, _ = client.time()
    now_minute = int(seconds) * 1000 // MINUTE_MS
    rng = random.Random(queue)
    for minute in range(now_minute - 14, now_minute):
        slot = minute % SLOTS
        completed = max(0, int(rate * (0.6 + 0.8 * rng.random())))
        failed = rng.choice([0, 0, 0, 1, 2]) if rate else 0
        client.hset(
            keys.queue(queue).throughput,
            mapping={f"m:{slot}": minute, f"completed:{slot}": completed, f"failed:{slot}": failed},
        )


def workload(system: System) -> None:
    for i in range(60):
        system.post_job("echo", {"to": f"user{i}@example.com"}, queue="mail")
    for _ in range(3):
        system.post_job("sleep", {"seconds": 120}, queue="reports")
    for i in range(4):
        system.post_job("echo", {"report": i}, queue="reports", delay_seconds=900)
    failed = [
        system.post_job(
            "fail", {"times": 9, "message": "SMTP 550 mailbox unavailable"}, max_attempts=2
        )
        for _ in range(3)
    ]
    for i in range(14):
        system.post_job("echo", {"image": i}, queue="images")
    for job in failed:
        system.wait_status(job["id"], "failed")


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        server = RedisServer(Path(tmp) / "redis")
        server.start()
        system = System(server.url, f"shots{uuid.uuid4().hex[:6]}", Path(tmp))
        try:
            system.start_api()
            system.start("worker", "--queues", "mail,reports,default", "--concurrency", "8")
            system.start("scheduler")
            workload(system)
            client = redis.Redis.from_url(server.url)
            keys = Keys(system.prefix)
            for queue, rate in (("mail", 90), ("reports", 6), ("default", 12), ("images", 0)):
                past_minutes(client, keys, queue, rate)
            eventually(
                lambda: system.get_job(system.post_job("echo", None, queue="mail")["id"]),
                what="API answering",
            )
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(
                    executable_path=CHROMIUM, headless=True, args=["--no-sandbox"]
                )
                page = browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                page.goto(system.api + "/")
                expect(
                    page.locator('tr[data-queue="reports"] [data-field="running"]')
                ).to_have_text("3", timeout=20_000)
                expect(page.locator('tr[data-queue="mail"] [data-field="waiting"]')).to_have_text(
                    "0", timeout=20_000
                )
                page.screenshot(path=str(OUT / "overview.png"))
                page.goto(system.api + "/#/jobs")
                expect(page.locator("#jobs-table tbody tr")).to_have_count(25)
                page.screenshot(path=str(OUT / "jobs.png"))
                browser.close()
            print(f"saved {OUT / 'overview.png'} and {OUT / 'jobs.png'}")
        finally:
            system.stop_all()
            server.stop()


if __name__ == "__main__":
    main()
