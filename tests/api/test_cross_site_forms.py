"""Every state-changing request must be application/json: a cross-site HTML form (or any
request without that content type) changes nothing, in both auth modes, with or without a
token, and whatever the route."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.api.content_type import json_content_type
from conveyor.config import Settings
from conveyor.store.consumer import Failure
from conveyor.store.keys import Keys
from tests.api.conftest import app_client, assert_problem, make_settings
from tests.helpers import seed
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio

TOKEN = "cross-site-test-token-0123456789"
Q = "forms"
ORIGIN = {"Origin": "https://evil.example"}

# What an HTML form, a fetch() without preflight or a bare tool can send.
NOT_JSON: list[tuple[str, dict[str, Any]]] = [
    ("form", {"headers": {"Content-Type": "application/x-www-form-urlencoded"}, "content": "x=1"}),
    ("multipart", {"files": {"x": ("x.txt", b"1")}}),
    ("text", {"headers": {"Content-Type": "text/plain"}, "content": '{"type": "t"}'}),
    ("none", {}),
    ("json-lookalike", {"headers": {"Content-Type": "application/jsonp"}, "content": "{}"}),
    (
        "two-headers",
        {
            "headers": [("Content-Type", "application/json"), ("Content-Type", "text/plain")],
            "content": "{}",
        },
    ),
]


async def snapshot(r: Redis, prefix: str) -> dict[bytes, Any]:
    """Every key of the prefix with its type and full content."""
    state: dict[bytes, Any] = {}
    async for key in r.scan_iter(match=f"{prefix}:*", count=1000):
        raw_kind: bytes | str = await r.type(key)
        kind = raw_kind.decode() if isinstance(raw_kind, bytes) else raw_kind
        if kind == "hash":
            value: Any = await r.hgetall(key)
        elif kind == "zset":
            value = await r.zrange(key, 0, -1, withscores=True)
        elif kind == "set":
            value = sorted(await r.smembers(key))
        elif kind == "stream":
            value = await r.xrange(key)
        elif kind == "list":
            value = await r.lrange(key, 0, -1)
        else:
            value = await r.get(key)
        state[key] = (kind, value)
    return state


@pytest.fixture(params=["none", "token"])
def mode_settings(request: pytest.FixtureRequest, redis_url: str, prefix: str) -> Settings:
    if request.param == "token":
        return make_settings(redis_url, prefix, api_tokens=(TOKEN,))
    return make_settings(redis_url, prefix)


@pytest.fixture
async def seeded(
    mode_settings: Settings, r: Redis, keys: Keys
) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """A client of the app, and the ids of a failed and a canceled job (the targets of
    retry, retry-failed and purge) and of a pending one (the target of cancel)."""
    producer = seed.producer_store(r, keys)
    consumer = seed.consumer_store(r, keys)
    await seed.enqueue_many(producer, 1, Q)
    [claimed] = await seed.claim_all(consumer, Q, count=1)
    await consumer.finish(
        failures=[Failure(claimed, "ValueError: x", "failed", False, 0, None)],
        schedule_channel="",
    )
    canceled = await seed.enqueue(producer, queue=Q)
    await producer.cancel(canceled.id)
    pending = await seed.enqueue(producer, queue=Q)
    ids = {"failed": claimed.job_id, "canceled": canceled.id, "pending": pending.id}
    async with app_client(mode_settings) as client:
        yield client, ids


def unsafe_requests(ids: dict[str, str]) -> list[tuple[str, str]]:
    return [
        ("POST", f"/queues/{Q}/purge?status=canceled"),
        ("POST", f"/queues/{Q}/purge?status=failed"),
        ("POST", f"/queues/{Q}/retry-failed"),
        ("POST", f"/jobs/{ids['failed']}/retry"),
        ("POST", f"/jobs/{ids['canceled']}/retry"),
        ("DELETE", f"/jobs/{ids['pending']}"),
        ("POST", "/jobs"),
        ("POST", "/jobs/batch"),
    ]


@pytest.mark.parametrize("with_token", [False, True])
@pytest.mark.parametrize(("kind", "body"), NOT_JSON, ids=[k for k, _ in NOT_JSON])
async def test_a_request_that_is_not_json_is_415_and_changes_nothing(
    seeded: tuple[httpx.AsyncClient, dict[str, str]],
    r: Redis,
    prefix: str,
    with_token: bool,
    kind: str,
    body: dict[str, Any],
) -> None:
    client, ids = seeded
    before = await snapshot(r, prefix)
    auth = {"Authorization": f"Bearer {TOKEN}"} if with_token else {}
    for method, path in unsafe_requests(ids):
        options = dict(body)
        headers = options.pop("headers", [])
        headers = list(headers.items()) if isinstance(headers, dict) else list(headers)
        headers += [*ORIGIN.items(), *auth.items()]
        response = await client.request(method, path, headers=headers, **options)
        problem = assert_problem(response, 415)
        assert problem["type"] == "urn:conveyor:problem:unsupported-media-type"
        assert "Content-Type: application/json" in str(problem["detail"])
        assert "www-authenticate" not in response.headers  # refused before authentication
    assert await snapshot(r, prefix) == before


async def test_the_same_requests_as_json_do_change_state(
    seeded: tuple[httpx.AsyncClient, dict[str, str]], r: Redis, prefix: str
) -> None:
    """The control: with the JSON header (and a token where one is needed) the very same
    body-less actions work, so the 415s above are the content-type rule at work."""
    client, ids = seeded
    headers = {**JSON, "Authorization": f"Bearer {TOKEN}"}
    before = await snapshot(r, prefix)
    purged = await client.post(f"/queues/{Q}/purge?status=canceled", headers=headers)
    assert purged.status_code == 200, purged.text
    assert purged.json()["purged"] == 1
    retried = await client.post(f"/jobs/{ids['failed']}/retry", headers=headers)
    assert retried.status_code == 200, retried.text
    canceled = await client.delete(f"/jobs/{ids['pending']}", headers=headers)
    assert canceled.status_code == 200, canceled.text
    with_body = await client.post(f"/queues/{Q}/retry-failed", json={}, headers=headers)
    assert with_body.status_code == 200, with_body.text
    assert await snapshot(r, prefix) != before


BODY_LESS = [
    ("POST", f"/queues/{Q}/purge?status=canceled"),
    ("POST", f"/queues/{Q}/retry-failed"),
    ("POST", "/jobs/{failed}/retry"),
    ("DELETE", "/jobs/{pending}"),
]


@pytest.mark.parametrize(
    ("content", "status", "slug"),
    [
        ("[null, null]", 422, "validation-error"),
        ("-9.13e+216", 422, "validation-error"),
        ('"x"', 422, "validation-error"),
        ("null", 422, "validation-error"),
        ("{", 400, "malformed-json"),
        ('{"a": ' + '"' + "x" * 5000 + '"}', 413, "request-too-large"),
    ],
    ids=["array", "number", "string", "null", "malformed", "too-large"],
)
async def test_a_body_less_action_refuses_a_body_that_is_not_an_object(
    seeded: tuple[httpx.AsyncClient, dict[str, str]],
    r: Redis,
    prefix: str,
    content: str,
    status: int,
    slug: str,
) -> None:
    """The actions that read no body declare `{}` (any object) in the OpenAPI document; any
    other body is refused, naming `body`, before anything changes."""
    client, ids = seeded
    headers = {**JSON, "Authorization": f"Bearer {TOKEN}"}
    before = await snapshot(r, prefix)
    for method, path in BODY_LESS:
        target = path.format(**ids)
        response = await client.request(method, target, headers=headers, content=content)
        problem = assert_problem(response, status)
        assert problem["type"] == f"urn:conveyor:problem:{slug}", (target, problem)
        if status == 422:
            assert [e["field"] for e in response.json()["errors"]] == ["body"]
    assert await snapshot(r, prefix) == before


async def test_a_body_less_action_takes_an_object_or_nothing(
    seeded: tuple[httpx.AsyncClient, dict[str, str]],
) -> None:
    client, ids = seeded
    headers = {**JSON, "Authorization": f"Bearer {TOKEN}"}
    ignored = await client.post(
        f"/queues/{Q}/purge?status=canceled", headers=headers, content='{"any": ["thing"]}'
    )
    assert ignored.status_code == 200, ignored.text
    assert ignored.json()["purged"] == 1
    empty = await client.request("DELETE", f"/jobs/{ids['pending']}", headers=headers, content="  ")
    assert empty.status_code == 200, empty.text


async def test_safe_methods_and_unrouted_requests_keep_their_answers(
    redis_url: str, prefix: str
) -> None:
    async with app_client(make_settings(redis_url, prefix)) as client:
        assert (await client.get("/jobs")).status_code == 200
        assert (await client.head("/healthz")).status_code in (200, 405)
        assert_problem(await client.put("/jobs", content="x=1"), 405)  # no route takes PUT
        assert_problem(await client.request("QUERY", "/jobs"), 405)
        assert_problem(await client.post("/nowhere", content="x=1"), 404)


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("application/json", True),
        ("Application/JSON; charset=UTF-8", True),
        ("application/json;charset=utf8", True),
        ("application/json; charset=latin-1", False),
        ("application/x-www-form-urlencoded", False),
        ("multipart/form-data; boundary=x", False),
        ("text/plain", False),
        ("application/json-patch+json", False),
        ("", False),
    ],
)
def test_json_content_type(value: str, accepted: bool) -> None:
    scope = {"headers": [(b"content-type", value.encode())]}
    assert json_content_type(scope) is accepted
