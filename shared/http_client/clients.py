"""The async and blocking clients: they send `Call` descriptions, retrying as `Attempts` says."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from types import TracebackType
from typing import Any, Self, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from conveyor.http_client.answers import read_answer
from conveyor.http_client.calls import (
    Call,
    Item,
    Items,
    Jobs,
    cancel_call,
    enqueue_call,
    enqueue_many_call,
    get_call,
    list_call,
    queues_call,
    replay_call,
    workers_call,
)
from conveyor.http_client.retrying import Attempts, RetryConfig
from conveyor.job import Job
from conveyor.store.producer import CancelOutcome, Page

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


class HttpClient:
    """The async client. Use as ``async with HttpClient(url) as client: ...``."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryConfig | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryConfig()
        self.timeout_seconds = timeout_seconds
        self._where = _display_url(self.base_url)
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            headers=_client_headers(token),
            timeout=timeout_seconds,
            transport=transport,
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
                    headers=call.headers,
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
        self,
        job_type: str,
        payload: Any = None,
        *,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        delay_seconds: float | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> Job:
        return await self._send(
            enqueue_call(
                job_type,
                payload,
                queue=queue,
                max_attempts=max_attempts,
                timeout_seconds=timeout_seconds,
                delay_seconds=delay_seconds,
                run_at=run_at,
                idempotency_key=idempotency_key,
                correlation_id=correlation_id,
            )
        )

    async def enqueue_many(
        self, items: Iterable[Item], *, correlation_id: str | None = None
    ) -> Jobs:
        """Create jobs in one request: `(type, payload[, options])` items, options being
        the keyword arguments of `enqueue` except `correlation_id`."""
        return await self._send(enqueue_many_call(items, correlation_id))

    async def get(self, job_id: str) -> Job:
        return await self._send(get_call(job_id))

    async def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        return await self._send(cancel_call(job_id))

    async def replay(self, job_id: str) -> Job:
        """Run a failed or canceled job again (``POST /jobs/{id}/retry``)."""
        return await self._send(replay_call(job_id))

    async def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        queue: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page:
        return await self._send(
            list_call(
                status=status,
                queue=queue,
                type=type,
                limit=limit,
                cursor=cursor,
                created_after=created_after,
                created_before=created_before,
            )
        )

    async def queues(self) -> Items:
        return await self._send(queues_call())

    async def workers(self) -> Items:
        return await self._send(workers_call())

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


class SyncHttpClient:
    """The blocking client, with the calls of `HttpClient`."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS,
        retry: RetryConfig | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryConfig()
        self.timeout_seconds = timeout_seconds
        self._where = _display_url(self.base_url)
        self._http = httpx.Client(
            base_url=self.base_url,
            headers=_client_headers(token),
            timeout=timeout_seconds,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"SyncHttpClient({self._where!r})"

    def _send(self, call: Call[T]) -> T:
        attempts = Attempts(self.retry, call, self.timeout_seconds, self._where)
        while True:
            try:
                response = self._http.request(
                    call.method,
                    call.path,
                    params=call.params,
                    json=call.body,
                    headers=call.headers,
                    timeout=attempts.start_try(),
                )
            except httpx.TransportError as exc:
                delay = attempts.after_error(exc)
            else:
                wait = attempts.after_response(response)
                if wait is None:
                    return read_answer(call, response)
                delay = wait
            time.sleep(delay)

    def enqueue(
        self,
        job_type: str,
        payload: Any = None,
        *,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        delay_seconds: float | None = None,
        run_at: datetime | None = None,
        idempotency_key: str | None = None,
        correlation_id: str | None = None,
    ) -> Job:
        return self._send(
            enqueue_call(
                job_type,
                payload,
                queue=queue,
                max_attempts=max_attempts,
                timeout_seconds=timeout_seconds,
                delay_seconds=delay_seconds,
                run_at=run_at,
                idempotency_key=idempotency_key,
                correlation_id=correlation_id,
            )
        )

    def enqueue_many(self, items: Iterable[Item], *, correlation_id: str | None = None) -> Jobs:
        return self._send(enqueue_many_call(items, correlation_id))

    def get(self, job_id: str) -> Job:
        return self._send(get_call(job_id))

    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        return self._send(cancel_call(job_id))

    def replay(self, job_id: str) -> Job:
        return self._send(replay_call(job_id))

    def list(
        self,
        *,
        status: str | Sequence[str] | None = None,
        queue: str | None = None,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
    ) -> Page:
        return self._send(
            list_call(
                status=status,
                queue=queue,
                type=type,
                limit=limit,
                cursor=cursor,
                created_after=created_after,
                created_before=created_before,
            )
        )

    def queues(self) -> Items:
        return self._send(queues_call())

    def workers(self) -> Items:
        return self._send(workers_call())

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
