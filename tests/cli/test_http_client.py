"""The HTTP client against a real `conveyor api` process, and its error mapping."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from conveyor.backoff import RetryPolicy
from conveyor.errors import (
    IdempotencyConflict,
    InvalidTransition,
    JobNotFound,
    PayloadTooLarge,
    StoreUnavailable,
    ValidationError,
)
from conveyor.http_client import (
    ApiError,
    HttpClient,
    RetryConfig,
    SyncHttpClient,
    job_from_json,
)
from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.values import CancelOutcome
from tests.cli.conftest import READ_TOKEN, TOKEN, Api
from tests.helpers.redis_server import free_port

FAST = RetryConfig(
    attempts=3,
    backoff=RetryPolicy(base_seconds=0.01, factor=2.0, max_seconds=0.05),
    deadline_seconds=10.0,
)


def test_every_call_round_trips(api: Api, queue: str) -> None:
    with SyncHttpClient(api.url, retry=FAST) as client:
        job = client.enqueue(
            "echo",
            {"n": 1},
            queue=queue,
            max_attempts=4,
            timeout_seconds=2.5,
            correlation_id="corr-1",
        )
        assert job.status is Status.PENDING
        assert (job.queue, job.max_attempts, job.timeout_seconds) == (queue, 4, 2.5)
        assert job.correlation_id == "corr-1"
        assert job.created_at > 0

        raw = httpx.get(f"{api.url}/jobs/{job.id}", timeout=5).json()
        fetched = client.get(job.id)
        assert fetched.to_json() == raw  # parsed back exactly, times to the millisecond
        assert fetched.payload == {"n": 1}

        later = client.enqueue("echo", queue=queue, delay_seconds=60)
        assert later.status is Status.SCHEDULED
        at = datetime.now(UTC) + timedelta(hours=1)
        dated = client.enqueue("echo", queue=queue, run_at=at)
        assert dated.status is Status.SCHEDULED
        assert dated.run_at == int(at.timestamp() * 1000)

        batch = client.enqueue_many(
            [("echo", 1, {"queue": queue}), ("echo", 2, {"queue": queue, "max_attempts": 2})]
        )
        assert [j.payload for j in batch] == [1, 2]
        assert batch[1].max_attempts == 2

        outcome, canceled = client.cancel(later.id)
        assert outcome is CancelOutcome.CANCELED
        assert canceled.status is Status.CANCELED
        replayed = client.replay(later.id)
        assert replayed.status is Status.PENDING
        assert replayed.attempts == 0

        first = client.list(queue=queue, limit=3)
        assert len(first.items) == 3
        assert first.next_cursor is not None
        rest = client.list(queue=queue, limit=3, cursor=first.next_cursor)
        ids = [j.id for j in first.items + rest.items]
        assert sorted(ids, reverse=True) == ids  # newest first
        assert set(ids) == {job.id, later.id, dated.id, *(j.id for j in batch)}
        scheduled = client.list(queue=queue, status=["scheduled"])
        assert [j.id for j in scheduled.items] == [dated.id]
        by_type = client.list(queue=queue, type="nothing-of-that-type")
        assert by_type.items == []
        window = client.list(
            queue=queue,
            created_after=datetime.now(UTC) - timedelta(minutes=5),
            created_before=datetime.now(UTC) + timedelta(minutes=5),
        )
        assert len(window.items) == 5

        queues = {q.name: q for q in client.queues()}
        assert queues[queue].scheduled == 1
        assert queues[queue].waiting == 4
        assert isinstance(client.workers(), list)


def test_idempotent_enqueue(api: Api, queue: str) -> None:
    with SyncHttpClient(api.url, retry=FAST) as client:
        first = client.enqueue("echo", 1, queue=queue, idempotency_key="k-1")
        again = client.enqueue("echo", 1, queue=queue, idempotency_key="k-1")
        assert again.id == first.id
        with pytest.raises(IdempotencyConflict) as err:
            client.enqueue("echo", 2, queue=queue, idempotency_key="k-1")
        assert err.value.key == "k-1"
        assert err.value.job_id == first.id
        with pytest.raises(IdempotencyConflict) as batch_err:
            client.enqueue_many(
                [
                    ("echo", 5, {"queue": queue, "idempotency_key": "k-2"}),
                    ("echo", 9, {"queue": queue, "idempotency_key": "k-1"}),
                ]
            )
        assert batch_err.value.key == "k-1"


def test_errors_map_to_shared_errors(api: Api, queue: str) -> None:
    with SyncHttpClient(api.url, retry=FAST) as client:
        with pytest.raises(JobNotFound) as missing:
            client.get(missing_id := new_job_id())
        assert missing.value.job_id == missing_id
        with pytest.raises(JobNotFound):
            client.cancel(new_job_id())
        with pytest.raises(JobNotFound):
            client.replay(new_job_id())
        job = client.enqueue("echo", queue=queue)
        with pytest.raises(InvalidTransition) as not_replayable:
            client.replay(job.id)
        assert (not_replayable.value.current, not_replayable.value.event) == ("pending", "replay")
        client.cancel(job.id)
        with pytest.raises(InvalidTransition) as terminal:
            client.cancel(job.id)
        assert (terminal.value.current, terminal.value.event) == ("canceled", "cancel")
        with pytest.raises(ValidationError) as invalid:
            client.enqueue("echo", queue=queue, max_attempts=0)
        assert invalid.value.field == "max_attempts"
        with pytest.raises(ValidationError) as bad_type:
            client.enqueue("no{braces}", queue=queue)
        assert bad_type.value.field == "type"
        with pytest.raises(PayloadTooLarge) as too_large:
            client.enqueue("echo", "x" * 2000, queue=queue)
        assert too_large.value.field == "payload"
        with pytest.raises(ValidationError) as bad_key:
            client.enqueue("echo", queue=queue, idempotency_key="no spaces allowed")
        assert bad_key.value.field == "Idempotency-Key"


def test_bad_arguments_are_refused_before_any_request() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"unexpected request {request.url}")

    with SyncHttpClient("http://api", transport=httpx.MockTransport(refuse)) as client:
        with pytest.raises(ValidationError) as bad_id:
            client.get("../queues")
        assert bad_id.value.field == "id"
        with pytest.raises(ValidationError) as naive:
            client.enqueue("echo", run_at=datetime(2030, 1, 1))
        assert naive.value.field == "run_at"
        with pytest.raises(ValidationError) as unknown:
            client.enqueue_many([("echo", 1, {"correlation_id": "x"})])
        assert unknown.value.field == "jobs/0/correlation_id"


def test_bearer_token_is_sent_and_checked(secured_api: Api, queue: str) -> None:
    with SyncHttpClient(secured_api.url, token=TOKEN, retry=FAST) as client:
        job = client.enqueue("echo", queue=queue)
        assert client.get(job.id).id == job.id
        assert TOKEN not in repr(client)
    with SyncHttpClient(secured_api.url, token=READ_TOKEN, retry=FAST) as reader:
        assert reader.get(job.id).id == job.id
        with pytest.raises(ApiError) as forbidden:
            reader.cancel(job.id)
        assert forbidden.value.status == 403
    for token in (None, "wrong-token-0123456789"):
        with SyncHttpClient(secured_api.url, token=token, retry=FAST) as anonymous:
            with pytest.raises(ApiError) as unauthorized:
                anonymous.get(job.id)
            assert unauthorized.value.status == 401
            assert unauthorized.value.problem["status"] == 401
            assert "token" not in str(unauthorized.value).lower() or TOKEN not in str(
                unauthorized.value
            )


class Counting(httpx.AsyncHTTPTransport):
    """The real transport, counting the requests that went through it."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


def test_503_is_retried_then_store_unavailable(api_without_redis: Api) -> None:
    transport = Counting()
    retry = RetryConfig(
        attempts=3,
        backoff=RetryPolicy(base_seconds=0.05, factor=2.0, max_seconds=0.2),
        deadline_seconds=10.0,
    )
    with SyncHttpClient(api_without_redis.url, retry=retry, transport=transport) as client:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            client.get(new_job_id())
        elapsed = time.monotonic() - started
    assert transport.requests == 3
    # Retry-After (1 s) is honoured only up to the backoff's cap (0.2 s) per wait.
    assert elapsed < 5


def test_unreachable_api_is_retried_then_store_unavailable() -> None:
    transport = Counting()
    url = f"http://127.0.0.1:{free_port()}"
    with SyncHttpClient(url, retry=FAST, transport=transport) as client:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable) as err:
            client.enqueue("echo")  # never sent: safe to retry even without a key
        assert time.monotonic() - started < 5
    assert transport.requests == 3
    assert url in str(err.value)


def test_deadline_bounds_the_retries() -> None:
    calls = 0

    def unavailable(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        return httpx.Response(503, headers={"Retry-After": "1"}, json=problem(503, "x"))

    retry = RetryConfig(
        attempts=10,
        backoff=RetryPolicy(base_seconds=0.5, factor=2.0, max_seconds=1.0),
        deadline_seconds=0.3,
    )
    transport = httpx.MockTransport(unavailable)
    with SyncHttpClient("http://api", retry=retry, transport=transport) as client:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            client.get(new_job_id())
        assert time.monotonic() - started < 1.0
    assert calls == 1  # the first wait would already pass the deadline


def test_a_request_that_may_have_been_applied_is_not_repeated() -> None:
    calls = 0

    def drop(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        raise httpx.ReadTimeout("timed out", request=request)

    with SyncHttpClient("http://api", retry=FAST, transport=httpx.MockTransport(drop)) as client:
        with pytest.raises(StoreUnavailable, match="may or may not"):
            client.enqueue("echo")
        assert calls == 1
        with pytest.raises(StoreUnavailable):
            client.enqueue("echo", idempotency_key="safe-to-repeat")
        assert calls == 1 + 3
        with pytest.raises(StoreUnavailable):
            client.get(new_job_id())
        assert calls == 1 + 3 + 3


def problem(status: int, slug: str, **extra: object) -> dict[str, object]:
    return {
        "type": f"urn:conveyor:problem:{slug}",
        "title": "Problem",
        "status": status,
        **extra,
    }


def mock(handler: Callable[[httpx.Request], httpx.Response]) -> SyncHttpClient:
    return SyncHttpClient(
        "http://api/base", token="s3cret", retry=FAST, transport=httpx.MockTransport(handler)
    )


def a_job(**fields: object) -> dict[str, object]:
    job: dict[str, object] = {
        "id": new_job_id(),
        "type": "echo",
        "queue": "default",
        "status": "running",
        "payload": {"a": [1, 2]},
        "result": None,
        "attempts": 1,
        "max_attempts": None,
        "timeout_seconds": None,
        "last_error": None,
        "created_at": "2030-01-02T03:04:05.678Z",
        "updated_at": "2030-01-02T03:04:06.000Z",
        "run_at": None,
        "started_at": "2030-01-02T03:04:05.900Z",
        "finished_at": None,
        "next_run_at": None,
        "expires_at": None,
        "correlation_id": None,
        "limit_key": None,
        "schedule": None,
        "cancel_requested": True,
        "worker": "w1",
        "history": [
            {
                "attempt": 1,
                "worker": "w0",
                "started_at": "2030-01-02T03:04:05.700Z",
                "finished_at": "2030-01-02T03:04:05.800Z",
                "outcome": "lost and reclaimed",
                "error": None,
            }
        ],
    }
    job.update(fields)
    return job


def test_requests_carry_the_token_the_path_and_the_body() -> None:
    seen: list[httpx.Request] = []
    body = a_job()

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        if request.method == "DELETE":
            return httpx.Response(202, json=body)
        if request.url.path.endswith("/jobs/batch"):
            return httpx.Response(201, json={"jobs": [body]})
        return httpx.Response(201, json=body)

    with mock(answer) as client:
        outcome, job = client.cancel(str(body["id"]))
        assert outcome is CancelOutcome.REQUESTED
        assert job.to_json() == body
        assert job.history[0].started_at == job.created_at + 22
        client.enqueue(
            "echo",
            [1],
            queue="q",
            delay_seconds=1.5,
            idempotency_key="key-1",
            correlation_id="c-1",
        )
        client.enqueue_many(
            [("echo", 1, {"idempotency_key": "key-2", "run_at": datetime(2030, 1, 1, tzinfo=UTC)})]
        )
    assert all(r.headers["authorization"] == "Bearer s3cret" for r in seen)
    assert seen[0].url.path == f"/base/jobs/{body['id']}"
    assert seen[1].headers["idempotency-key"] == "key-1"
    assert seen[1].headers["x-correlation-id"] == "c-1"
    assert json.loads(seen[1].content) == {
        "type": "echo",
        "payload": [1],
        "queue": "q",
        "delay_seconds": 1.5,
    }
    assert json.loads(seen[2].content) == {
        "jobs": [
            {
                "type": "echo",
                "payload": 1,
                "run_at": "2030-01-01T00:00:00.000Z",
                "idempotency_key": "key-2",
            }
        ]
    }


@pytest.mark.parametrize(
    ("status", "body", "expected", "check"),
    [
        (404, problem(404, "job-not-found"), JobNotFound, {}),
        (
            409,
            problem(409, "invalid-transition", job_status="completed"),
            InvalidTransition,
            {"current": "completed", "event": "cancel"},
        ),
        (
            409,
            problem(409, "idempotency-conflict", detail="idempotency key", job_id="J"),
            IdempotencyConflict,
            {"job_id": "J"},
        ),
        (
            413,
            problem(413, "payload-too-large", errors=[{"field": "payload", "message": "big"}]),
            PayloadTooLarge,
            {"field": "payload", "message": "big"},
        ),
        (
            422,
            problem(
                422,
                "validation-error",
                errors=[{"field": "queue", "message": "bad"}, {"field": "type", "message": "x"}],
            ),
            ValidationError,
            {"field": "queue", "message": "bad"},
        ),
        (401, problem(401, "unauthorized"), ApiError, {"status": 401}),
        (403, problem(403, "forbidden"), ApiError, {"status": 403}),
        (500, problem(500, "internal-error"), ApiError, {"status": 500}),
        (503, problem(503, "store-unavailable"), StoreUnavailable, {}),
        (418, "<html>teapot</html>", ApiError, {"status": 418}),
        (200, {"not": "a job"}, ApiError, {"status": 200}),
        (200, "not json", ApiError, {"status": 200}),
    ],
)
def test_error_mapping(
    status: int, body: object, expected: type[Exception], check: dict[str, object]
) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body)
        return httpx.Response(status, json=body)

    with mock(answer) as client, pytest.raises(expected) as err:
        client.cancel(new_job_id())
    for name, value in check.items():
        assert getattr(err.value, name) == value
    assert "s3cret" not in str(err.value)


def test_job_from_json_keeps_milliseconds() -> None:
    body = a_job(run_at="2030-01-02T03:04:05.001+02:00", timeout_seconds=1)
    job = job_from_json(body)
    assert job.run_at == int(datetime(2030, 1, 2, 1, 4, 5, 1000, tzinfo=UTC).timestamp() * 1000)
    assert job.timeout_seconds == 1.0
    assert job.status is Status.RUNNING


@pytest.mark.anyio
async def test_async_client(api: Api, queue: str) -> None:
    async with HttpClient(api.url, retry=FAST) as client:
        job = await client.enqueue("echo", {"async": True}, queue=queue)
        assert (await client.get(job.id)).payload == {"async": True}
        [other] = await client.enqueue_many([("echo", 2, {"queue": queue})])
        page = await client.list(queue=queue)
        assert [j.id for j in page.items] == [other.id, job.id]
        outcome, canceled = await client.cancel(job.id)
        assert outcome is CancelOutcome.CANCELED
        assert (await client.replay(canceled.id)).status is Status.PENDING
        assert queue in {q.name for q in await client.queues()}
        assert isinstance(await client.workers(), list)
        with pytest.raises(JobNotFound):
            await client.get(new_job_id())


@pytest.mark.anyio
async def test_async_client_retries_503(api_without_redis: Api) -> None:
    async with HttpClient(api_without_redis.url, retry=FAST) as client:
        started = time.monotonic()
        with pytest.raises(StoreUnavailable):
            await client.list()
        assert time.monotonic() - started < 5
