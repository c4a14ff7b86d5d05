"""POST /jobs/batch: every job created in request order, or none at all."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import pytest

from conveyor.api.body import OFF_LOOP_BYTES, batch_body_limit, batch_value_limit
from tests.api.conftest import MAX_PAYLOAD, app_client, assert_problem, error_fields, make_settings
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio

KeyCount = Callable[[], Awaitable[int]]


@pytest.fixture
async def baseline(client: httpx.AsyncClient, key_count: KeyCount) -> int:
    """A queue and a job exist already, so a refusal has something it could disturb."""
    assert (await client.post("/jobs", json={"type": "seed"})).status_code == 201
    return await key_count()


async def test_creates_every_job_in_order(client: httpx.AsyncClient) -> None:
    items: list[dict[str, Any]] = [
        {"type": "a", "payload": {"n": 0}},
        {"type": "b", "queue": "other", "max_attempts": 4, "timeout_seconds": 2},
        {"type": "c", "delay_seconds": 600},
        {"type": "d", "run_at": "2099-01-01T00:00:00Z", "queue": "other"},
    ]
    response = await client.post(
        "/jobs/batch", json={"jobs": items}, headers={"X-Correlation-ID": "batch-1"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"jobs"}
    jobs = body["jobs"]
    assert [j["type"] for j in jobs] == ["a", "b", "c", "d"]
    assert [j["queue"] for j in jobs] == ["default", "other", "default", "other"]
    assert [j["status"] for j in jobs] == ["pending", "pending", "scheduled", "scheduled"]
    assert jobs[0]["payload"] == {"n": 0}
    assert jobs[1]["max_attempts"] == 4
    assert jobs[3]["run_at"] == "2099-01-01T00:00:00.000Z"
    assert all(j["correlation_id"] == "batch-1" for j in jobs)
    assert len({j["id"] for j in jobs}) == 4
    for job in jobs:
        fetched = await client.get(f"/jobs/{job['id']}")
        assert fetched.json() == job


async def test_one_job_and_the_maximum(redis_url: str, prefix: str) -> None:
    async with app_client(make_settings(redis_url, prefix, max_batch_jobs=5)) as c:
        one = await c.post("/jobs/batch", json={"jobs": [{"type": "t"}]})
        assert one.status_code == 201
        assert len(one.json()["jobs"]) == 1
        five = await c.post("/jobs/batch", json={"jobs": [{"type": "t"}] * 5})
        assert five.status_code == 201
        assert len(five.json()["jobs"]) == 5
        problem = assert_problem(
            await c.post("/jobs/batch", json={"jobs": [{"type": "t"}] * 6}), 422
        )
        assert error_fields(problem) == {"jobs"}
        assert "5" in str(problem["detail"])


async def test_invalid_items_refuse_the_whole_batch_naming_each(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    items: list[Any] = [
        {"type": "ok"},
        {"type": "bad type"},
        {"type": "ok", "queue": "a:b", "max_attempts": "3"},
        {"type": "ok"},
        "not an object",
        {"payload": 1, "priority": 9},
        {"type": "ok", "idempotency_key": "bad key"},
        {"type": "ok", "delay_seconds": 5, "run_at": "2099-01-01T00:00:00Z"},
    ]
    problem = assert_problem(await client.post("/jobs/batch", json={"jobs": items}), 422)
    assert problem["type"] == "urn:conveyor:problem:validation-error"
    assert error_fields(problem) == {
        "jobs/1/type",
        "jobs/2/queue",
        "jobs/2/max_attempts",
        "jobs/4",
        "jobs/5/type",
        "jobs/5/priority",
        "jobs/6/idempotency_key",
        "jobs/7/run_at",
    }
    assert await key_count() == baseline


async def test_a_single_bad_item_among_many_writes_nothing(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    items: list[dict[str, Any]] = [{"type": "t", "queue": f"q{i % 3}"} for i in range(200)]
    items[150] = {"type": "t", "timeout_seconds": -1}
    problem = assert_problem(await client.post("/jobs/batch", json={"jobs": items}), 422)
    assert error_fields(problem) == {"jobs/150/timeout_seconds"}
    assert await key_count() == baseline


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({}, {"jobs"}),
        ({"jobs": None}, {"jobs"}),
        ({"jobs": []}, {"jobs"}),
        ({"jobs": {"type": "t"}}, {"jobs"}),
        ({"jobs": "t"}, {"jobs"}),
        ({"jobs": [{"type": "t"}], "extra": 1}, {"extra"}),
        ({"type": "t"}, {"type", "jobs"}),
    ],
)
async def test_malformed_envelope_is_422(
    client: httpx.AsyncClient,
    key_count: KeyCount,
    baseline: int,
    body: dict[str, Any],
    fields: set[str],
) -> None:
    problem = assert_problem(await client.post("/jobs/batch", json=body), 422)
    assert error_fields(problem) == fields
    assert await key_count() == baseline


async def test_body_must_be_an_object(client: httpx.AsyncClient) -> None:
    problem = assert_problem(await client.post("/jobs/batch", json=[{"type": "t"}]), 422)
    assert error_fields(problem) == {"body"}


@pytest.mark.parametrize(
    ("content", "headers", "status"),
    [
        (b'{"jobs": [', JSON, 400),
        (b'{"jobs": [], "jobs": []}', JSON, 400),
        (b"", JSON, 400),
        (b'{"jobs": [{"type": "t"}]}', {"content-type": "text/plain"}, 415),
        (b'{"jobs": [{"type": "t"}]}', {}, 415),
    ],
)
async def test_malformed_body_and_wrong_media_type(
    client: httpx.AsyncClient,
    key_count: KeyCount,
    baseline: int,
    content: bytes,
    headers: dict[str, str],
    status: int,
) -> None:
    assert_problem(await client.post("/jobs/batch", content=content, headers=headers), status)
    assert await key_count() == baseline


async def test_too_large_payloads_are_413_naming_each(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    big = "x" * (MAX_PAYLOAD + 1)
    items = [{"type": "t"}, {"type": "t", "payload": big}, {"type": "t", "payload": big}]
    problem = assert_problem(await client.post("/jobs/batch", json={"jobs": items}), 413)
    assert problem["type"] == "urn:conveyor:problem:payload-too-large"
    assert error_fields(problem) == {"jobs/1/payload", "jobs/2/payload"}
    assert await key_count() == baseline


async def test_field_errors_win_over_too_large_payloads(client: httpx.AsyncClient) -> None:
    big = "x" * (MAX_PAYLOAD + 1)
    items = [{"type": "t", "payload": big}, {"type": "a b"}]
    problem = assert_problem(await client.post("/jobs/batch", json={"jobs": items}), 422)
    assert error_fields(problem) == {"jobs/1/type"}


async def test_body_over_the_batch_limit_is_413(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    limit = batch_body_limit(MAX_PAYLOAD)
    item = b'{"type": "t", "payload": "' + b"x" * (MAX_PAYLOAD - 100) + b'"}'
    count = limit // len(item) + 1
    content = b'{"jobs": [' + b",".join([item] * count) + b"]}"
    assert len(content) > limit
    problem = assert_problem(await client.post("/jobs/batch", content=content, headers=JSON), 413)
    assert problem["type"] == "urn:conveyor:problem:request-too-large"
    assert await key_count() == baseline


async def test_body_under_the_batch_limit_is_accepted(client: httpx.AsyncClient) -> None:
    """Bigger than one POST /jobs may send, within the batch limit."""
    item = {"type": "t", "payload": "x" * (MAX_PAYLOAD - 100)}
    response = await client.post("/jobs/batch", json={"jobs": [item] * 8})
    assert response.status_code == 201
    assert len(response.json()["jobs"]) == 8


def test_batch_body_limit() -> None:
    assert batch_body_limit(1024) == 1024 * 16 + 64 * 1024
    assert batch_body_limit(16 * 1024 * 1024) == 64 * 1024 * 1024


def test_batch_value_limit() -> None:
    assert batch_value_limit(5) == 5_000
    assert batch_value_limit(1000) == 1_000_000
    assert batch_value_limit(10_000) == 1_000_000


async def test_more_values_than_the_jobs_could_need_is_422_before_parsing(
    redis_url: str, prefix: str
) -> None:
    """With max_batch_jobs 5, at most 5,000 values: 2,600 empty objects count 5,200."""
    async with app_client(make_settings(redis_url, prefix, max_batch_jobs=5)) as c:
        content = b'{"jobs": [' + b",".join([b"{}"] * 2600) + b"]}"
        problem = assert_problem(await c.post("/jobs/batch", content=content, headers=JSON), 422)
        assert error_fields(problem) == {"jobs"}
        assert "at most 5000 JSON values" in str(problem["detail"])
        # Commas and brackets inside strings are not values: the same bytes in a payload pass.
        text = "{},[]," * 1000
        response = await c.post("/jobs/batch", json={"jobs": [{"type": "t", "payload": text}]})
        assert response.status_code == 201, response.text


async def test_a_body_parsed_off_the_event_loop_is_created(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, max_payload_bytes=1024 * 1024)
    async with app_client(settings) as c:
        items = [{"type": "t", "payload": ["x" * 1000] * 500} for _ in range(4)]
        content = httpx.Request("POST", "/", json={"jobs": items}).content
        assert len(content) > OFF_LOOP_BYTES
        response = await c.post("/jobs/batch", content=content, headers=JSON)
        assert response.status_code == 201, response.text[:300]
        assert [job["payload"] for job in response.json()["jobs"]] == [i["payload"] for i in items]
        # Strict parsing holds off the loop too.
        duplicate = content[:-1] + b', "jobs": []}'
        problem = assert_problem(await c.post("/jobs/batch", content=duplicate, headers=JSON), 400)
        assert "duplicate object key" in str(problem["detail"])


async def test_wrong_method_is_405(client: httpx.AsyncClient) -> None:
    response = await client.put("/jobs/batch", json={"jobs": []})
    assert_problem(response, 405)


async def test_get_batch_path_is_not_a_job(client: httpx.AsyncClient) -> None:
    response = await client.get("/jobs/batch")
    assert_problem(response, 405)
    assert response.headers["allow"] == "POST"


async def test_creation_and_repeats_are_logged(
    client: httpx.AsyncClient, caplog: pytest.LogCaptureFixture
) -> None:
    """The log lines of these routes are written for real (their `extra` fields must not
    clash with LogRecord attributes, which would turn a success into a 500)."""
    caplog.set_level(logging.DEBUG)
    items = [{"type": "t", "idempotency_key": "logged"}, {"type": "t"}]
    assert (await client.post("/jobs/batch", json={"jobs": items})).status_code == 201
    again = await client.post("/jobs", json={"type": "t"}, headers={"Idempotency-Key": "logged"})
    assert again.status_code == 200
    job_id = again.json()["id"]
    assert (await client.delete(f"/jobs/{job_id}", headers=JSON)).status_code == 200
    assert (await client.post(f"/jobs/{job_id}/retry", headers=JSON)).status_code == 200
    messages = {r.getMessage() for r in caplog.records if r.name == "conveyor.api"}
    assert {"batch created", "idempotent repeat", "job replayed"} <= messages
