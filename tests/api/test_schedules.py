"""`/schedules` through the HTTP API: create, replace, read, list, delete; each bad field
named in a 422 with nothing written; the cap on their number."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import httpx
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from conveyor.ids import ms_to_rfc3339
from conveyor.metrics import SchedulerMetrics
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from conveyor.worker.periodic import Periodic
from tests.api.conftest import JSON, assert_problem

pytestmark = pytest.mark.anyio

NIGHTLY = {
    "type": "report.daily",
    "queue": "reports",
    "payload": {"format": "pdf"},
    "cron": "0 2 * * *",
    "timezone": "Europe/Paris",
    "max_attempts": 3,
    "timeout_seconds": 600,
    "overlap": "skip",
}


async def test_put_creates_then_replaces_a_schedule(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "conveyor")  # the routes' log lines are written too
    created = await client.put("/schedules/nightly", json=NIGHTLY)
    assert created.status_code == 201, created.text
    assert created.headers["location"] == "/schedules/nightly"
    body = created.json()
    assert {k: body[k] for k in NIGHTLY} == {**NIGHTLY, "timeout_seconds": 600.0}
    assert body["name"] == "nightly"
    assert body["catch_up"] == "one"
    assert body["every_seconds"] is None
    assert body["last_run_at"] is None
    assert body["last_job_id"] is None
    assert body["next_run_at"].endswith(":00:00.000Z")  # 02:00 in Paris is a whole hour UTC

    replaced = await client.put("/schedules/nightly", json={**NIGHTLY, "payload": 2})
    assert replaced.status_code == 200
    assert replaced.json()["payload"] == 2
    assert replaced.json()["next_run_at"] == body["next_run_at"]  # same timing, same next

    every = await client.put("/schedules/nightly", json={"type": "t", "every_seconds": 30})
    assert every.status_code == 200
    shown = every.json()
    assert (shown["cron"], shown["timezone"], shown["every_seconds"]) == (None, None, 30)
    assert (shown["queue"], shown["overlap"], shown["max_attempts"]) == ("default", "allow", None)

    read = await client.get("/schedules/nightly")
    assert read.status_code == 200
    assert read.json() == shown
    assert [r.msg for r in caplog.records if r.name == "conveyor.api"].count("schedule stored") == 3


async def test_list_and_delete(client: httpx.AsyncClient, r: Redis, keys: Keys) -> None:
    for name in ("b", "a"):
        assert (await client.put(f"/schedules/{name}", json=NIGHTLY)).status_code == 201
    listing = await client.get("/schedules")
    assert listing.status_code == 200
    assert [s["name"] for s in listing.json()["items"]] == ["a", "b"]
    assert listing.json()["total"] == 2
    gone = await client.delete("/schedules/a", headers=JSON)
    assert gone.status_code == 204
    assert_problem(await client.get("/schedules/a"), 404)
    assert_problem(await client.delete("/schedules/a", headers=JSON), 404)
    assert await r.zrange(keys.schedules, 0, -1) == [b"b"]
    problem = assert_problem(await client.get("/schedules?limit=3"), 422)
    assert problem["errors"] == [{"field": "limit", "message": "is not a known query parameter"}]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({**NIGHTLY, "cron": "0 25 * * *"}, "cron"),
        ({**NIGHTLY, "cron": "* * *"}, "cron"),
        ({**NIGHTLY, "timezone": "Nowhere/City"}, "timezone"),
        ({**NIGHTLY, "every_seconds": 10}, "cron"),
        ({"type": "t"}, "cron"),
        ({"type": "t", "every_seconds": "10"}, "every_seconds"),
        ({"type": "t", "every_seconds": 0}, "every_seconds"),
        ({**NIGHTLY, "overlap": "sometimes"}, "overlap"),
        ({**NIGHTLY, "catch_up": "all"}, "catch_up"),
        ({**NIGHTLY, "max_attempts": 0}, "max_attempts"),
        ({**NIGHTLY, "timeout_seconds": 0}, "timeout_seconds"),
        ({**NIGHTLY, "queue": "a{b}"}, "queue"),
        ({**NIGHTLY, "cronn": "x"}, "cronn"),
        ({"cron": "* * * * *"}, "type"),
    ],
)
async def test_each_bad_field_is_named_and_nothing_is_written(
    client: httpx.AsyncClient,
    key_count: Callable[[], Awaitable[int]],
    body: dict[str, object],
    field: str,
) -> None:
    response = await client.put("/schedules/nightly", json=body)
    problem = assert_problem(response, 422)
    assert field in [e["field"] for e in problem["errors"]]  # type: ignore[attr-defined]
    assert await key_count() == 0


async def test_a_bad_name_is_named_in_a_put_and_unknown_elsewhere(
    client: httpx.AsyncClient, key_count: Callable[[], Awaitable[int]]
) -> None:
    problem = assert_problem(await client.put("/schedules/a:b", json=NIGHTLY), 422)
    assert [e["field"] for e in problem["errors"]] == ["name"]  # type: ignore[attr-defined]
    assert_problem(await client.get("/schedules/a:b"), 404)
    assert_problem(await client.delete("/schedules/a:b", headers=JSON), 404)
    assert await key_count() == 0


async def test_a_payload_over_the_limit_is_413(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/schedules/big", json={"type": "t", "every_seconds": 5, "payload": "x" * 20_000}
    )
    assert_problem(response, 413)


async def test_the_jobs_of_a_schedule_show_its_name(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    await client.put("/schedules/tick", json={"type": "echo", "every_seconds": 1})
    seconds, micros = await r.time()
    now = int(seconds) * 1000 + int(micros) // 1000
    await r.hset(keys.schedule("tick"), "next_run_at", now - now % 1000)
    await r.zadd(keys.schedules, {"tick": now - now % 1000})
    producer = ProducerStore(r, keys, result_ttl_seconds=600)
    periodic = Periodic(
        r, keys, producer, grace_ms=10_000, metrics=SchedulerMetrics(CollectorRegistry())
    )
    await periodic.tick(now)
    shown = (await client.get("/schedules/tick")).json()
    assert shown["last_run_at"] == ms_to_rfc3339(now - now % 1000)
    job = (await client.get(f"/jobs/{shown['last_job_id']}")).json()
    assert job["schedule"] == "tick"
    assert job["type"] == "echo"
