"""T16: hostile input against the real API process (uvicorn), generated with hypothesis
and sent over HTTP, some of it over a raw socket: malformed and huge bodies, deep nesting,
wrong content types, odd numbers, unicode and control characters in ids and headers, path
traversal in ids, CR/LF injection in the correlation id header.

Pass: never a 5xx; a refused request changes nothing in Redis (DBSIZE and a digest of
every key's DUMP are the same before and after); the correlation id echoed is always a
well-formed one (the client's when valid, else a new one), never raw input; every line
the API logged is one JSON object. The in-process schemathesis run of the OpenAPI
document (tests/contract) complements this with schema-driven requests.
"""

from __future__ import annotations

import json
import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.e2e.system import System
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.profile import current
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.http import JSON

pytestmark = pytest.mark.faults

EXAMPLES = current().hostile_examples
MAX_PAYLOAD = 16 * 1024
CORRELATION = re.compile(r"[A-Za-z0-9._:-]{1,128}")
HYPOTHESIS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    database=None,
)


@dataclass
class Target:
    system: System
    url: str
    requests: int = 0
    refused: int = 0
    created: int = 0
    server_errors: int = 0

    def __post_init__(self) -> None:
        self.r = redisio.client(self.url)
        self.before = redisio.digest(self.r)

    def check(self, status: int, echoed: str | None, what: str) -> None:
        """The invariants of every answer; `echoed` is the X-Correlation-ID sent back."""
        self.requests += 1
        if status >= 500:
            self.server_errors += 1
        assert status < 500, f"{what}: answered {status}"
        if echoed is not None:
            assert CORRELATION.fullmatch(echoed), f"{what}: echoed {echoed!r}"
        after = redisio.digest(self.r)
        if status in (200, 201, 202):
            self.created += status == 201
            self.before = after
        else:
            self.refused += 1
            assert after == self.before, f"{what}: refused with {status} but Redis changed"


@pytest.fixture
def target(make_redis: MakeRedis, make_system: MakeSystem) -> Iterator[Target]:
    server = make_redis()
    system = make_system(server.url, CONVEYOR_MAX_PAYLOAD_BYTES=str(MAX_PAYLOAD))
    system.start_api()
    seeded = httpx.post(
        f"{system.api}/jobs",
        json={"type": "echo", "payload": {"seed": 1}},
        headers={"Idempotency-Key": "seed-key"},  # an idempotency key exists too
        timeout=10,
    )
    assert seeded.status_code == 201
    yield Target(system, server.url)
    for line in system.processes[0].log_path.read_text().splitlines():
        assert isinstance(json.loads(line), dict), f"API log line is not a JSON object: {line!r}"


def _send(t: Target, method: str, path: str, **kw: Any) -> httpx.Response:
    with httpx.Client(base_url=t.system.api, timeout=30) as http:
        return http.request(method, path, **kw)


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=40),
    lambda inner: (
        st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner, max_size=5)
    ),
    max_leaves=20,
)
numbers = (
    st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=8)
    | st.none()
    | st.booleans()
)
CONTENT_TYPES = [
    "application/json",
    "application/json; charset=utf-8",
    "text/plain",
    "application/x-www-form-urlencoded",
    "multipart/form-data; boundary=x",
    "application/problem+json",
    "",
]


@HYPOTHESIS
@given(
    body=st.binary(max_size=2000) | json_values.map(lambda v: json.dumps(v).encode()),
    content_type=st.sampled_from(CONTENT_TYPES),
    path=st.sampled_from(["/jobs", "/jobs/batch"]),
)
def test_arbitrary_bodies(target: Target, body: bytes, content_type: str, path: str) -> None:
    headers = {"Content-Type": content_type} if content_type else {}
    response = _send(target, "POST", path, content=body, headers=headers)
    target.check(response.status_code, response.headers.get("x-correlation-id"), f"{path} {body!r}")


@HYPOTHESIS
@given(
    fields=st.fixed_dictionaries(
        {},
        optional={
            "type": st.text(max_size=80),
            "queue": st.text(max_size=80),
            "payload": json_values,
            "max_attempts": numbers,
            "delay_seconds": numbers,
            "timeout_seconds": numbers,
            "run_at": st.text(max_size=40) | numbers,
            "idempotency_key": st.text(max_size=300),
        },
    ),
    batch=st.booleans(),
)
def test_hostile_job_fields(target: Target, fields: dict[str, Any], batch: bool) -> None:
    body = {"jobs": [fields]} if batch else fields
    content = json.dumps(body, allow_nan=True).encode()
    response = _send(
        target,
        "POST",
        "/jobs/batch" if batch else "/jobs",
        content=content,
        headers={"Content-Type": "application/json"},
    )
    target.check(response.status_code, response.headers.get("x-correlation-id"), repr(fields))


hostile_ids = st.text(max_size=40) | st.sampled_from(
    ["../", "..%2F..%2Fetc%2Fpasswd", "%2F", "*", "{", "}", "a:b", "../../conveyor:queues",
     "x" * 1100, "\x00", "\r\nX-Injected: 1", "01ARZ3NDEKTSV4RRFFQ69G5FA*", "\ud800"]
)  # fmt: skip


@HYPOTHESIS
@given(job_id=hostile_ids, method=st.sampled_from(["GET", "DELETE", "POST"]), raw=st.booleans())
def test_hostile_ids_in_paths(target: Target, job_id: str, method: str, raw: bool) -> None:
    encoded = job_id.encode("utf-8", "surrogatepass")
    segment = quote(encoded, safe="/:*{}" if raw else "")  # raw: "../" stays a traversal
    path = f"/jobs/{segment}" + ("/retry" if method == "POST" else "")
    response = _send(target, method, path, headers=JSON)
    if response.request.url.path.startswith("/jobs/"):  # not normalised away from /jobs
        assert response.status_code in (400, 404, 405, 422), f"{method} {path}: {response}"
    target.check(response.status_code, response.headers.get("x-correlation-id"), path)


def _raw_post(port: int, header_value: bytes, body: bytes) -> tuple[int, dict[str, str]]:
    request = (
        b"POST /jobs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"X-Correlation-ID: " + header_value + b"\r\n"
        b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body
    )
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(request)
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head = reply.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    headers: dict[str, str] = {}
    for line in head[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers


@HYPOTHESIS
@given(
    value=st.binary(max_size=200)
    | st.sampled_from(
        [
            b"ok-id\r\nX-Injected: 1",
            b"id\nSet-Cookie: a=b",
            b"\x01\x02",
            b"\xff\xfe",
            b"x" * 10_000,
            b"a" * 128,
            b"a" * 129,
            "\u00e9t\u00e9".encode(),
            b"${jndi:ldap://x}",
            b"<script>",
        ]
    )
)
def test_hostile_correlation_ids_over_a_raw_socket(target: Target, value: bytes) -> None:
    status, headers = _raw_post(target.system.api_port, value, b'{"type": "echo"}')
    assert "x-injected" not in headers
    assert "set-cookie" not in headers
    echoed = headers.get("x-correlation-id")
    if status == 201:
        assert echoed is not None
        if echoed.encode() != value:
            assert not CORRELATION.fullmatch(value.decode("latin-1"))  # replaced: invalid
    target.check(status, echoed, f"X-Correlation-ID {value[:60]!r}")


DEEP = 100_000
JOB = b'{"type":"echo","payload":'
FIXED: list[tuple[str, bytes, dict[str, str]]] = [
    ("100k-deep arrays", JOB + b"[" * DEEP + b"]" * DEEP + b"}", {}),
    ("100k-deep objects", JOB + b'{"a":' * DEEP + b"1" + b"}" * DEEP + b"}", {}),
    ("5000-digit integer", b'{"type":"echo","payload":' + b"9" * 5000 + b"}", {}),
    ("NaN", b'{"type":"echo","payload":NaN}', {}),
    ("2**64", b'{"type":"echo","payload":18446744073709551616}', {}),
    ("lone surrogate", b'{"type":"echo","payload":"\\ud800"}', {}),
    ("duplicate keys", b'{"type":"echo","type":"x"}', {}),
    ("empty body", b"", {}),
    ("payload over the limit", JOB + b'"' + b"x" * (MAX_PAYLOAD + 10) + b'"}', {}),
    ("10 MB body", b'{"type":"echo","payload":"' + b"x" * 10_000_000 + b'"}', {}),
    ("negative delay", b'{"type":"echo","delay_seconds":-1}', {}),
    ("huge delay", b'{"type":"echo","delay_seconds":1e300}', {}),
    ("max_attempts 2**63", b'{"type":"echo","max_attempts":9223372036854775808}', {}),
    ("wrong content type", b'{"type":"echo"}', {"Content-Type": "text/plain"}),
]  # fmt: skip


def test_fixed_hostile_bodies(target: Target, recorder: Recorder) -> None:
    statuses: dict[str, int] = {}
    for name, body, extra in FIXED:
        headers = {"Content-Type": "application/json", **extra}
        response = _send(target, "POST", "/jobs", content=body, headers=headers)
        statuses[name] = response.status_code
        target.check(response.status_code, response.headers.get("x-correlation-id"), name)

    def chunks() -> Iterator[bytes]:  # chunked, no Content-Length, over the limit
        yield b'{"type":"echo","payload":"'
        for _ in range(64):
            yield b"x" * 1024
        yield b'"}'

    chunked = _send(
        target, "POST", "/jobs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    statuses["chunked over the limit"] = chunked.status_code
    target.check(chunked.status_code, chunked.headers.get("x-correlation-id"), "chunked")
    recorder.record(
        Figures(
            scenario="T16 hostile input (fixed cases)",
            jobs=target.created,
            faults=f"{target.requests} hostile requests: deep nesting, huge numbers and bodies, "
            "NaN, surrogates, chunked",
            lost=0,
            duplicated=0,
            explained=0,
            details={"statuses": statuses, "server_errors": target.server_errors},
        )
    )
    assert statuses["payload over the limit"] == 413
    assert statuses["10 MB body"] == 413
    assert statuses["chunked over the limit"] == 413
    assert target.created == 0
