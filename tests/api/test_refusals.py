"""Every refused request: the right 4xx problem, and not one Redis key written."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette

from conveyor.api.body import ENVELOPE_BYTES
from tests.api.conftest import MAX_PAYLOAD, assert_problem, error_fields
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio

KeyCount = Callable[[], Awaitable[int]]
BODY_LIMIT = MAX_PAYLOAD + ENVELOPE_BYTES


@pytest.fixture
async def baseline(client: httpx.AsyncClient, key_count: KeyCount) -> int:
    """A queue and a job exist already, so a refusal has something it could disturb."""
    response = await client.post("/jobs", json={"type": "seed"})
    assert response.status_code == 201
    return await key_count()


async def post_raw(
    client: httpx.AsyncClient, content: bytes, headers: dict[str, str] | None = None
) -> httpx.Response:
    return await client.post("/jobs", content=content, headers=JSON if headers is None else headers)


DEEP = 5_000

MALFORMED: list[tuple[str, bytes]] = [
    ("truncated", b'{"type": "noop"'),
    ("not json", b"type=noop"),
    ("trailing garbage", b'{"type": "noop"} x'),
    ("single quotes", b"{'type': 'noop'}"),
    ("trailing comma", b'{"type": "noop",}'),
    ("empty", b""),
    ("only whitespace", b"  \n "),
    ("invalid utf-8", b'{"type": "noop", "payload": "\xff\xfe"}'),
    ("overlong utf-8", b'{"type": "noop", "payload": "\xc0\xaf"}'),
    ("utf-8 bom", b'\xef\xbb\xbf{"type": "noop"}'),
    ("NaN", b'{"type": "noop", "payload": NaN}'),
    ("Infinity", b'{"type": "noop", "payload": Infinity}'),
    ("-Infinity", b'{"type": "noop", "payload": [-Infinity]}'),
    ("float overflow", b'{"type": "noop", "payload": 1e999}'),
    ("5000-digit int", b'{"type": "noop", "payload": ' + b"9" * 5000 + b"}"),
    ("deep nesting", b'{"type": "noop", "payload": ' + b"[" * DEEP + b"]" * DEEP + b"}"),
    ("deep objects", b'{"type": "noop", "payload": ' + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}"),
    ("duplicate keys", b'{"type": "noop", "type": "other"}'),
    ("nested duplicate keys", b'{"type": "noop", "payload": {"a": 1, "a": 2}}'),
]


@pytest.mark.parametrize(("case", "content"), MALFORMED, ids=[c for c, _ in MALFORMED])
async def test_malformed_body_is_400(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int, case: str, content: bytes
) -> None:
    body = assert_problem(await post_raw(client, content), 400)
    assert body["type"] == "urn:conveyor:problem:malformed-json"
    assert await key_count() == baseline


async def test_duplicate_key_is_named(client: httpx.AsyncClient) -> None:
    body = assert_problem(await post_raw(client, b'{"type": "a", "queue": "q", "queue": "r"}'), 400)
    assert '"queue"' in str(body["detail"])


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "application/jsonx",
     "application/json; charset=latin-1", "text/json", "multipart/form-data; boundary=x"],
)  # fmt: skip
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient,
    key_count: KeyCount,
    baseline: int,
    content_type: str | None,
) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    response = await post_raw(client, b'{"type": "noop"}', headers)
    assert_problem(response, 415)
    assert await key_count() == baseline


@pytest.mark.parametrize(
    ("content", "expected"),
    [(b"[]", 422), (b'"noop"', 422), (b"null", 422), (b"42", 422), (b'[{"type": "a"}]', 422)],
)
async def test_top_level_must_be_an_object(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int, content: bytes, expected: int
) -> None:
    body = assert_problem(await post_raw(client, content), expected)
    assert error_fields(body) == {"body"}
    assert await key_count() == baseline


INVALID: list[tuple[str, dict[str, Any], str]] = [
    ("unknown field", {"type": "noop", "priority": 1}, "priority"),
    ("typo of a field", {"type": "noop", "delay": 5}, "delay"),
    ("missing type", {"payload": 1}, "type"),
    ("type null", {"type": None}, "type"),
    ("type not a string", {"type": 5}, "type"),
    ("type with space", {"type": "send mail"}, "type"),
    ("type with colon", {"type": "a:b"}, "type"),
    ("type too long", {"type": "t" * 65}, "type"),
    ("type empty", {"type": ""}, "type"),
    ("max_attempts as string", {"type": "noop", "max_attempts": "3"}, "max_attempts"),
    ("max_attempts bool", {"type": "noop", "max_attempts": True}, "max_attempts"),
    ("max_attempts fraction", {"type": "noop", "max_attempts": 3.5}, "max_attempts"),
    ("max_attempts zero", {"type": "noop", "max_attempts": 0}, "max_attempts"),
    ("max_attempts too big", {"type": "noop", "max_attempts": 1001}, "max_attempts"),
    ("max_attempts huge", {"type": "noop", "max_attempts": 10**30}, "max_attempts"),
    ("negative delay", {"type": "noop", "delay_seconds": -1}, "delay_seconds"),
    ("delay too long", {"type": "noop", "delay_seconds": 365 * 86400 + 1}, "delay_seconds"),
    ("delay as string", {"type": "noop", "delay_seconds": "5"}, "delay_seconds"),
    ("delay bool", {"type": "noop", "delay_seconds": False}, "delay_seconds"),
    ("delay and run_at", {"type": "noop", "delay_seconds": 5, "run_at": "2099-01-01T00:00:00Z"},
     "run_at"),
    ("run_at words", {"type": "noop", "run_at": "tomorrow"}, "run_at"),
    ("run_at without timezone", {"type": "noop", "run_at": "2099-01-01T00:00:00"}, "run_at"),
    ("run_at date only", {"type": "noop", "run_at": "2099-01-01"}, "run_at"),
    ("run_at bad month", {"type": "noop", "run_at": "2099-13-01T00:00:00Z"}, "run_at"),
    ("run_at bad day", {"type": "noop", "run_at": "2099-02-30T00:00:00Z"}, "run_at"),
    ("run_at bad offset", {"type": "noop", "run_at": "2099-01-01T00:00:00+25:00"}, "run_at"),
    ("run_at epoch number", {"type": "noop", "run_at": 4102444800}, "run_at"),
    ("run_at trailing text", {"type": "noop", "run_at": "2099-01-01T00:00:00Zjunk"}, "run_at"),
    ("timeout zero", {"type": "noop", "timeout_seconds": 0}, "timeout_seconds"),
    ("timeout negative", {"type": "noop", "timeout_seconds": -5}, "timeout_seconds"),
    ("timeout too long", {"type": "noop", "timeout_seconds": 86401}, "timeout_seconds"),
    ("timeout as string", {"type": "noop", "timeout_seconds": "10"}, "timeout_seconds"),
    ("queue with {", {"type": "noop", "queue": "a{b"}, "queue"),
    ("queue with }", {"type": "noop", "queue": "a}b"}, "queue"),
    ("queue hash tag", {"type": "noop", "queue": "{x}"}, "queue"),
    ("queue with :", {"type": "noop", "queue": "a:b"}, "queue"),
    ("queue with *", {"type": "noop", "queue": "*"}, "queue"),
    ("queue with /", {"type": "noop", "queue": "../x"}, "queue"),
    ("queue 65 chars", {"type": "noop", "queue": "q" * 65}, "queue"),
    ("queue empty", {"type": "noop", "queue": ""}, "queue"),
    ("queue not a string", {"type": "noop", "queue": ["a"]}, "queue"),
    ("queue non-ascii", {"type": "noop", "queue": "caf\u00e9"}, "queue"),
    ("payload nested too deep", {"type": "noop", "payload": json.loads("[" * 80 + "]" * 80)},
     "payload"),
    ("payload int beyond 64 bits", {"type": "noop", "payload": 2**64}, "payload"),
]  # fmt: skip


@pytest.mark.parametrize(("case", "body", "field"), INVALID, ids=[c for c, _, _ in INVALID])
async def test_invalid_field_is_422_naming_it(
    client: httpx.AsyncClient,
    key_count: KeyCount,
    baseline: int,
    case: str,
    body: dict[str, Any],
    field: str,
) -> None:
    problem = assert_problem(await client.post("/jobs", json=body), 422)
    assert problem["type"] == "urn:conveyor:problem:validation-error"
    assert error_fields(problem) == {field}
    assert field in str(problem["detail"])
    assert await key_count() == baseline


async def test_every_invalid_field_is_reported_at_once(client: httpx.AsyncClient) -> None:
    body = {"queue": "a:b", "max_attempts": "3", "color": "red", "timeout_seconds": 0}
    problem = assert_problem(await client.post("/jobs", json=body), 422)
    assert error_fields(problem) == {"type", "queue", "max_attempts", "color", "timeout_seconds"}


@pytest.mark.parametrize(
    "content",
    [
        b'{"type": "noop", "payload": "\\ud800"}',
        b'{"type": "noop", "payload": "ok \\udfff"}',
        b'{"type": "noop", "payload": {"\\ud83d": 1}}',
        b'{"type": "noop", "payload": ["\\ude00\\ud83d"]}',
    ],
)
async def test_lone_surrogate_payload_is_422(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int, content: bytes
) -> None:
    problem = assert_problem(await post_raw(client, content), 422)
    assert error_fields(problem) == {"payload"}
    assert await key_count() == baseline


async def test_paired_surrogates_are_fine(client: httpx.AsyncClient) -> None:
    response = await post_raw(client, b'{"type": "noop", "payload": "\\ud83d\\ude00"}')
    assert response.status_code == 201
    assert response.json()["payload"] == "\U0001f600"


async def test_unknown_field_with_lone_surrogate_name_is_valid_json(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    response = await post_raw(client, b'{"type": "noop", "\\ud800x": 1}')
    problem = assert_problem(response, 422)
    assert error_fields(problem) == {"\ud800x"}
    response.content.decode("utf-8")  # strictly valid UTF-8 on the wire
    assert await key_count() == baseline


async def test_encoded_payload_over_the_limit_is_413(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    payload = "x" * (MAX_PAYLOAD + 1)
    problem = assert_problem(
        await client.post("/jobs", json={"type": "n", "payload": payload}), 413
    )
    assert problem["type"] == "urn:conveyor:problem:payload-too-large"
    assert await key_count() == baseline


async def test_payload_just_under_the_limit_is_accepted(client: httpx.AsyncClient) -> None:
    payload = "x" * (MAX_PAYLOAD - 8)  # msgpack str header: up to 5 bytes
    response = await client.post("/jobs", json={"type": "n", "payload": payload})
    assert response.status_code == 201


async def test_body_over_the_limit_is_413(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    content = b'{"type": "n", "payload": "' + b"x" * BODY_LIMIT + b'"}'
    problem = assert_problem(await post_raw(client, content), 413)
    assert problem["type"] == "urn:conveyor:problem:request-too-large"
    assert await key_count() == baseline


async def test_chunked_body_over_the_limit_is_413_before_it_ends(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    chunk = b"x" * 8192
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        yield b'{"type": "n", "payload": "'
        while True:  # far more than the limit, were it all read
            sent += 1
            yield chunk

    response = await client.post("/jobs", content=endless(), headers=JSON)
    assert "content-length" not in response.request.headers
    assert response.request.headers["transfer-encoding"] == "chunked"
    assert_problem(response, 413)
    assert sent * len(chunk) <= BODY_LIMIT + 2 * len(chunk)
    assert await key_count() == baseline


async def test_declared_length_over_the_limit_is_413_without_reading(
    app: Starlette, key_count: KeyCount, baseline: int
) -> None:
    """A Content-Length over the limit is refused before the body is read at all."""
    received: list[str] = []
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        received.append("read")
        return {"type": "http.request", "body": b"{", "more_body": True}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/jobs",
        "raw_path": b"/jobs",
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"host", b"api"),
            (b"content-type", b"application/json"),
            (b"content-length", str(10**9).encode()),
        ],
        "client": ("127.0.0.1", 1234),
        "server": ("api", 80),
        "state": {},
    }
    await app(scope, receive, send)
    assert received == []
    start = sent[0]
    assert start["type"] == "http.response.start"
    assert start["status"] == 413
    assert (b"content-type", b"application/problem+json") in start["headers"]
    assert await key_count() == baseline


BAD_IDS = [
    "..%2F..%2Fetc",
    "%2E%2E%2Fjobs",
    "%2F",
    "*",
    "%2A",
    "job:*",
    "{default}",
    "01J0000000000000000000000",  # 25 characters
    "01J00000000000000000000000X",  # 27 characters
    "01j0000000000000000000000a",  # lowercase
    "81J00000000000000000000000",  # beyond 128 bits
    "01J0000000000000000000000I",  # I is not Crockford base32
    "%00",
    "%0D%0Aset",
]


@pytest.mark.parametrize("job_id", BAD_IDS)
@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_bad_job_ids_are_404(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int, method: str, job_id: str
) -> None:
    response = await client.request(method, f"/jobs/{job_id}", headers=JSON)
    assert_problem(response, 404)
    assert await key_count() == baseline


async def test_dot_segments_do_not_escape(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int
) -> None:
    for path in ["/jobs/../jobs/x", "/jobs/./*", "/jobs/x/../../healthz/../jobs/%2A"]:
        response = await client.request("DELETE", path, headers=JSON)
        assert_problem(response, 404)
    assert await key_count() == baseline


QUERIES: list[tuple[str, set[str]]] = [
    ("status=bogus", {"status"}),
    ("status=pending,", {"status"}),
    ("status=", {"status"}),
    ("status=PENDING", {"status"}),
    ("limit=0", {"limit"}),
    ("limit=501", {"limit"}),
    ("limit=-1", {"limit"}),
    ("limit=1.5", {"limit"}),
    ("limit=ten", {"limit"}),
    ("limit=", {"limit"}),
    ("limit=%EF%BC%91", {"limit"}),  # a full-width digit one
    ("limit=1&limit=2", {"limit"}),
    ("cursor=abc", {"cursor"}),
    ("cursor=*", {"cursor"}),
    ("queue=a%7Bb", {"queue"}),
    ("queue=a:b", {"queue"}),
    ("queue=" + "q" * 65, {"queue"}),
    ("type=a b", {"type"}),
    ("type=a&type=b", {"type"}),
    ("sort=asc", {"sort"}),
    ("status=pending&page=2&limit=0", {"page", "limit"}),
]


@pytest.mark.parametrize(("query", "fields"), QUERIES, ids=[q for q, _ in QUERIES])
async def test_bad_list_query_is_422(
    client: httpx.AsyncClient, key_count: KeyCount, baseline: int, query: str, fields: set[str]
) -> None:
    problem = assert_problem(await client.get(f"/jobs?{query}"), 422)
    assert error_fields(problem) == fields
    assert await key_count() == baseline


async def test_unknown_route_and_wrong_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nope"), 404)
    response = await client.put("/jobs", json={"type": "n"})
    assert_problem(response, 405)
    assert set(response.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
    response = await client.post("/jobs/01J00000000000000000000000", headers=JSON)
    assert_problem(response, 405)
