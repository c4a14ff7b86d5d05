"""GET /jobs: payload and result only when asked, and a page capped in bytes."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from tests.api.conftest import app_client, assert_problem, make_settings
from tests.helpers.command_stats import calls
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio

CAP = 64 * 1024  # the smallest max_list_bytes
BIG = 30_000  # characters of each large payload: two fit under CAP, three do not


async def post(client: httpx.AsyncClient, payload: object, queue: str = "sizes") -> str:
    response = await client.post(
        "/jobs", json={"type": "echo", "payload": payload, "queue": queue}, headers=JSON
    )
    assert response.status_code == 201, response.text
    job_id: str = response.json()["id"]
    return job_id


async def walk(client: httpx.AsyncClient, query: str) -> list[list[dict[str, Any]]]:
    """Every page of a listing, following next_cursor."""
    pages: list[list[dict[str, Any]]] = []
    cursor = None
    while True:
        suffix = f"&cursor={cursor}" if cursor else ""
        response = await client.get(f"/jobs?{query}{suffix}")
        assert response.status_code == 200, response.text
        body = response.json()
        assert len(response.content) <= CAP + 1024, len(response.content)
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        assert len(pages) < 50, "the pages do not end"


async def test_items_carry_payload_and_result_only_when_asked(
    redis_url: str, prefix: str, r: Redis
) -> None:
    async with app_client(make_settings(redis_url, prefix)) as client:
        job_id = await post(client, {"secret": "x" * 100})
        before = await calls(r, "hgetall")
        plain = (await client.get("/jobs?queue=sizes")).json()["items"]
        assert await calls(r, "hgetall") == before, "a listing read whole job hashes"
        assert [j["id"] for j in plain] == [job_id]
        assert "payload" not in plain[0]
        assert "result" not in plain[0]
        assert plain[0]["status"] == "pending"
        assert plain[0]["type"] == "echo"
        [with_payload] = (await client.get("/jobs?queue=sizes&include=payload")).json()["items"]
        assert with_payload["payload"] == {"secret": "x" * 100}
        assert "result" not in with_payload
        [both] = (await client.get("/jobs?queue=sizes&include=payload,result")).json()["items"]
        assert (both["payload"], both["result"]) == ({"secret": "x" * 100}, None)
        whole = (await client.get(f"/jobs/{job_id}")).json()
        assert both == whole


@pytest.mark.parametrize("value", ["bogus", "payload,", "payload,,result", " payload"])
async def test_include_names_only_payload_and_result(
    redis_url: str, prefix: str, value: str
) -> None:
    async with app_client(make_settings(redis_url, prefix)) as client:
        response = await client.get("/jobs", params={"include": value})
        problem = assert_problem(response, 422)
        assert [e["field"] for e in response.json()["errors"]] == ["include"], problem


async def test_a_page_of_large_jobs_ends_at_the_byte_cap_and_the_cursor_finds_the_rest(
    redis_url: str, prefix: str
) -> None:
    settings = make_settings(redis_url, prefix, max_payload_bytes=64 * 1024, max_list_bytes=CAP)
    async with app_client(settings) as client:
        ids = [await post(client, f"{i}" * BIG) for i in range(5)]
        pages = await walk(client, "queue=sizes&limit=50&include=payload")
        assert [len(p) for p in pages] == [2, 2, 1]
        seen = [j["id"] for page in pages for j in page]
        assert seen == ids[::-1]  # newest first, each once
        assert all(len(j["payload"]) == BIG for page in pages for j in page)
        # Without the payloads the five jobs are small: one page.
        [light] = await walk(client, "queue=sizes&limit=50")
        assert len(light) == 5


async def test_a_job_larger_than_the_cap_comes_alone(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, max_payload_bytes=256 * 1024, max_list_bytes=CAP)
    async with app_client(settings) as client:
        small = await post(client, "small")
        huge = await post(client, "h" * (2 * CAP))
        first = (await client.get("/jobs?queue=sizes&include=payload")).json()
        assert [j["id"] for j in first["items"]] == [huge]  # the page always makes progress
        assert first["next_cursor"] == huge
        rest = (await client.get(f"/jobs?queue=sizes&include=payload&cursor={huge}")).json()
        assert [j["id"] for j in rest["items"]] == [small]
        assert rest["next_cursor"] is None


async def test_the_encoded_page_is_checked_too(redis_url: str, prefix: str) -> None:
    """A payload whose JSON is far larger than its stored form (control characters are
    escaped six times over) still ends the page at the cap."""
    settings = make_settings(redis_url, prefix, max_payload_bytes=64 * 1024, max_list_bytes=CAP)
    async with app_client(settings) as client:
        for _ in range(4):
            await post(client, "\x01" * 5_000)  # 5 kB stored, 30 kB as JSON
        response = await client.get("/jobs?queue=sizes&include=payload")
        body = response.json()
        assert len(response.content) <= CAP + 1024
        assert len(body["items"]) == 2
        assert body["next_cursor"] == body["items"][-1]["id"]
        assert json.loads(response.content) == body
