"""The async and blocking clients: they send `Call` descriptions, retrying as `Attempts` says."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, TypedDict, TypeVar, Unpack
from urllib.parse import urlsplit, urlunsplit

import httpx

from conveyor.blocking import Blocking
from conveyor.client_api import (
    AsyncClosing,
    EnqueueOptions,
    Item,
    Jobs,
    ListFilter,
    Queues,
    Workers,
)
from conveyor.http_client.answers import read_answer
from conveyor.http_client.calls import (
    Call,
    cancel_call,
    enqueue_call,
    enqueue_many_call,
    get_call,
    list_call,
    pause_call,
    queue_call,
    queues_call,
    replay_call,
    resize_queue_call,
    resize_worker_call,
    workers_call,
)
from conveyor.http_client.retrying import Attempts, RetryConfig
from conveyor.job import Job
from conveyor.values import CancelOutcome, Page, QueueStats

T = TypeVar("T")

DEFAULT_TIMEOUT_SECONDS = 10.0


def _display_url(url: str) -> str:
    """The base URL without any user:password part, fit for messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = host + (f":{parts.port}" if parts.port else "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _client_headers(token: str | None) -> dict[str, str]:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return headers


def _request_headers(call: Call[Any]) -> dict[str, str]:
    """The call's headers, with ``Content-Type: application/json`` on every request that
    may change state, body or not: the API refuses any other (415)."""
    if call.method in ("GET", "HEAD"):
        return call.headers
    return {**call.headers, "Content-Type": "application/json"}


class HttpOptions(TypedDict, total=False):
    """How an HTTP client connects: the keyword arguments of both HTTP clients."""

    token: str | None  # the API's bearer token
    timeout_seconds: float  # of one request (default DEFAULT_TIMEOUT_SECONDS)
    retry: RetryConfig | None  # how 503s and unreachable APIs are retried
    transport: httpx.AsyncBaseTransport | None  # another transport (tests, proxies)


class HttpClient(AsyncClosing):
    """The async client. Use as ``async with HttpClient(url) as client: ...``."""

    def __init__(self, base_url: str, **options: Unpack[HttpOptions]) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = options.get("retry") or RetryConfig()
        self.timeout_seconds = options.get("timeout_seconds", DEFAULT_TIMEOUT_SECONDS)
        self._where = _display_url(self.base_url)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_client_headers(options.get("token")),
            timeout=self.timeout_seconds,
            transport=options.get("transport"),
        )

    def __repr__(self) -> str:
        return f"HttpClient({self._where!r})"

    async def _send(self, call: Call[T]) -> T:
        attempts = Attempts(self.retry, call, self.timeout_seconds, self._where)
        while True:
            try:
                response = await self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.body,
                    headers=_request_headers(call),
                    timeout=attempts.start_try(),
                )
            except httpx.TransportError as exc:
                delay = attempts.after_error(exc)
            else:
                wait = attempts.after_response(response)
                if wait is None:
                    return read_answer(call, response)
                delay = wait
            await asyncio.sleep(delay)

    async def enqueue(
        self, job_type: str, payload: Any = None, **options: Unpack[EnqueueOptions]
    ) -> Job:
        return await self._send(enqueue_call(job_type, payload, **options))

    async def enqueue_many(
        self, jobs: Iterable[Item], *, correlation_id: str | None = None
    ) -> Jobs:
        """Create jobs in one request: `(type, payload[, options])` items, options being
        the keyword arguments of `enqueue` except `correlation_id`."""
        return await self._send(enqueue_many_call(jobs, correlation_id))

    async def get(self, job_id: str) -> Job:
        return await self._send(get_call(job_id))

    async def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        return await self._send(cancel_call(job_id))

    async def replay(self, job_id: str) -> Job:
        """Run a failed or canceled job again (``POST /jobs/{id}/retry``)."""
        return await self._send(replay_call(job_id))

    async def list(self, **filters: Unpack[ListFilter]) -> Page:
        return await self._send(list_call(filters))

    async def queues(self) -> Queues:
        return await self._send(queues_call())

    async def queue(self, name: str) -> QueueStats | None:
        return await self._send(queue_call(name))

    async def pause_queue(self, name: str) -> QueueStats | None:
        return await self._send(pause_call(name, True))

    async def resume_queue(self, name: str) -> QueueStats | None:
        return await self._send(pause_call(name, False))

    async def workers(self) -> Workers:
        return await self._send(workers_call())

    async def resize_worker(self, worker_id: str, concurrency: int | None) -> bool:
        return await self._send(resize_worker_call(worker_id, concurrency))

    async def resize_queue(self, queue: str, concurrency: int | None) -> bool:
        return await self._send(resize_queue_call(queue, concurrency))

    async def aclose(self) -> None:
        await self._http.aclose()


class SyncHttpClient(Blocking[HttpClient]):
    """The blocking client, with the calls of `HttpClient`: it runs one on a private event
    loop (`conveyor.blocking`), so both send, retry and read answers the same way."""

    def __init__(self, base_url: str, **options: Unpack[HttpOptions]) -> None:
        super().__init__(lambda: HttpClient(base_url, **options))

    def __repr__(self) -> str:
        return f"Sync{self._client!r}"
