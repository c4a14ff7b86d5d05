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
from typing import Generic, TypeVar, Unpack

from conveyor.client_api import AsyncJobsClient, EnqueueOptions, SyncJobsClient
from conveyor.codec import JsonValue
from conveyor.job import Job
from conveyor.payloads import PayloadType
from conveyor.worker.context import JobContext

P = TypeVar("P")
R = TypeVar("R")


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
        self, client: AsyncJobsClient, payload: P, **options: Unpack[EnqueueOptions]
    ) -> Job:
        """Create a job of this type through an async client (`Client`, `HttpClient`),
        with the options of the client's `enqueue`."""
        if not inspect.iscoroutinefunction(client.enqueue):
            raise TypeError(f"{client!r} is a blocking client: use enqueue_sync")
        return await client.enqueue(self.name, self.json_payload(payload), **options)

    def enqueue_sync(
        self, client: SyncJobsClient, payload: P, **options: Unpack[EnqueueOptions]
    ) -> Job:
        """`enqueue` through a blocking client (`SyncClient`, `SyncHttpClient`)."""
        if inspect.iscoroutinefunction(client.enqueue):
            raise TypeError(f"{client!r} is an async client: use `await ....enqueue`")
        return client.enqueue(self.name, self.json_payload(payload), **options)

    def json_payload(self, payload: P) -> JsonValue:
        """The JSON sent for `payload`: a typed payload validated and converted (an
        equivalent JSON object is accepted too), `ValidationError` naming the bad field;
        a plain payload as it is."""
        if self.payload_type is None:
            return payload
        return self.payload_type.dump(payload)
