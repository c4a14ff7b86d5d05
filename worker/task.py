"""`Task`: what `@handler` returns. It is the handler, still callable as before, and it
enqueues jobs of its own type with a payload of its own payload type::

    @conveyor.handler("reports.build")
    async def build(ctx: conveyor.JobContext, payload: BuildRequest) -> dict[str, str]: ...

    job = await build.enqueue(client, BuildRequest(month="2026-11"), queue="reports")

mypy checks the payload against the handler's annotation. A pydantic model or dataclass
payload is validated and converted to JSON before anything is sent (`ValidationError`
naming the field otherwise); any other payload is sent as it is.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from conveyor.codec import JsonValue
from conveyor.job import Job
from conveyor.payloads import PayloadType
from conveyor.worker.context import JobContext

P = TypeVar("P")
R = TypeVar("R")


class AsyncEnqueuer(Protocol):
    """A client whose `enqueue` is a coroutine: `conveyor.Client`, `conveyor.HttpClient`."""

    async def enqueue(
        self,
        job_type: str,
        payload: Any = ...,
        *,
        queue: str = ...,
        max_attempts: int | None = ...,
        timeout_seconds: float | None = ...,
        delay_seconds: float | None = ...,
        run_at: datetime | None = ...,
        correlation_id: str | None = ...,
        idempotency_key: str | None = ...,
    ) -> Job: ...


class SyncEnqueuer(Protocol):
    """A client whose `enqueue` blocks: `conveyor.SyncClient`, `conveyor.SyncHttpClient`."""

    def enqueue(
        self,
        job_type: str,
        payload: Any = ...,
        *,
        queue: str = ...,
        max_attempts: int | None = ...,
        timeout_seconds: float | None = ...,
        delay_seconds: float | None = ...,
        run_at: datetime | None = ...,
        correlation_id: str | None = ...,
        idempotency_key: str | None = ...,
    ) -> Job: ...


class Task(Generic[P, R]):
    """A registered handler of payload type `P` and result `R` (for an async handler, the
    coroutine it returns). Calling it calls the handler."""

    def __init__(
        self, name: str, fn: Callable[[JobContext, P], R], payload_type: PayloadType | None
    ) -> None:
        functools.update_wrapper(self, fn)  # its name, docstring and signature
        self.name = name
        self.fn = fn
        self.payload_type = payload_type  # None: a plain JSON payload

    def __repr__(self) -> str:
        return f"<Task {self.name!r} {getattr(self.fn, '__qualname__', self.fn)!r}>"

    def __call__(self, ctx: JobContext, payload: P) -> R:
        return self.fn(ctx, payload)

    async def enqueue(
        self,
        client: AsyncEnqueuer,
        payload: P,
        *,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        delay_seconds: float | None = None,
        run_at: datetime | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """Create a job of this type through an async client; the options are those of the
        client's `enqueue` (those left None are not passed: the client's defaults apply)."""
        if not inspect.iscoroutinefunction(client.enqueue):
            raise TypeError(f"{client!r} is a blocking client: use enqueue_sync")
        options = _given(
            queue=queue,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            delay_seconds=delay_seconds,
            run_at=run_at,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
        )
        return await client.enqueue(self.name, self.json_payload(payload), **options)

    def enqueue_sync(
        self,
        client: SyncEnqueuer,
        payload: P,
        *,
        queue: str | None = None,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        delay_seconds: float | None = None,
        run_at: datetime | None = None,
        correlation_id: str | None = None,
        idempotency_key: str | None = None,
    ) -> Job:
        """`enqueue` through a blocking client (`SyncClient`, `SyncHttpClient`)."""
        if inspect.iscoroutinefunction(client.enqueue):
            raise TypeError(f"{client!r} is an async client: use `await ....enqueue`")
        options = _given(
            queue=queue,
            max_attempts=max_attempts,
            timeout_seconds=timeout_seconds,
            delay_seconds=delay_seconds,
            run_at=run_at,
            correlation_id=correlation_id,
            idempotency_key=idempotency_key,
        )
        return client.enqueue(self.name, self.json_payload(payload), **options)

    def json_payload(self, payload: P) -> JsonValue:
        """The JSON sent for `payload`: a typed payload validated and converted (an
        equivalent JSON object is accepted too), `ValidationError` naming the bad field;
        a plain payload as it is."""
        if self.payload_type is None:
            return payload
        return self.payload_type.dump(payload)


def _given(**options: Any) -> dict[str, Any]:
    return {name: value for name, value in options.items() if value is not None}
