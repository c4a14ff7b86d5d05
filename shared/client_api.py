"""The one interface of every Conveyor client, declared once.

`AsyncJobsClient` is what `conveyor.Client` (Redis) and `conveyor.HttpClient` (the HTTP
API) offer; `SyncJobsClient` is its blocking form, offered by `conveyor.SyncClient` and
`conveyor.SyncHttpClient`. Code written against either protocol runs unchanged on Redis
or over HTTP: the same methods, the same filters and options, the same return values.

The options of `enqueue` and the filters of `list` are declared here, once, as
`TypedDict`s (`EnqueueOptions`, `ListFilter`); the clients take them as keyword arguments
(``**options: Unpack[EnqueueOptions]``), so ``client.enqueue("t", {}, queue="q")`` is
type-checked against this module.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Protocol, Self, TypedDict, Unpack

from conveyor.job import Job
from conveyor.values import CancelOutcome, Page, QueueStats, WorkerInfo


class JobOptions(TypedDict, total=False):
    """The options of one new job, each optional (absent: the default)."""

    queue: str  # default: "default"
    max_attempts: int | None  # None: the handler's, else the worker's default
    timeout_seconds: float | None  # one attempt's limit; None as max_attempts
    delay_seconds: float | None  # run this long after the enqueue (not with run_at)
    run_at: datetime | None  # run at this time, timezone-aware (not with delay_seconds)
    # Never start after this time (timezone-aware): still waiting then, it ends `expired`.
    expires_at: datetime | None
    # Never start after this many seconds from the enqueue, by Redis's clock (not with
    # expires_at).
    expire_after_seconds: float | None
    # A second enqueue with the same key and the same request (within the idempotency
    # ttl, per queue) returns the first job; another request raises IdempotencyConflict.
    idempotency_key: str | None
    # Counts under the concurrency and rate limits of this key too (a tenant id, say), as
    # every job does under its queue's and its type's (PUT /queues/{queue}/limits/{key}).
    limit_key: str | None
    # While a job of the queue with this key is not finished (and unique_for_seconds after
    # it finished), an enqueue with the key returns that job instead of creating one.
    unique_key: str | None
    unique_for_seconds: float | None


class EnqueueOptions(JobOptions, total=False):
    """The keyword arguments of `enqueue`: a job's options and its correlation id."""

    correlation_id: str | None


class ListFilter(TypedDict, total=False):
    """The keyword arguments of `list`, each optional: jobs newest first, one page."""

    status: str | Sequence[str] | None  # any of these statuses
    queue: str | None
    type: str | None
    limit: int  # jobs per page, 1 to 500 (default 50)
    cursor: str | None  # the previous page's next_cursor
    created_after: datetime | None  # timezone-aware, inclusive
    created_before: datetime | None  # timezone-aware, inclusive
    # Which of payload and result the items carry (default both; () for neither: a page
    # of large jobs then costs their states alone).
    include: Sequence[str]


# A job of `enqueue_many`: (type, payload) or (type, payload, options), the options being
# those of `JobOptions` (a mapping built at run time is accepted; its keys are checked).
Item = tuple[str, Any] | tuple[str, Any, Mapping[str, Any]]
# The return types of methods of classes whose `list` method shadows the builtin.
Jobs = list[Job]
Queues = list[QueueStats]
Workers = list[WorkerInfo]


class AsyncJobsClient(Protocol):
    """The async client: `conveyor.Client` and `conveyor.HttpClient`."""

    async def enqueue(
        self, job_type: str, payload: Any = None, **options: Unpack[EnqueueOptions]
    ) -> Job:
        """Create a job of `job_type`."""
        ...

    async def enqueue_many(
        self, jobs: Iterable[Item], *, correlation_id: str | None = None
    ) -> Jobs:
        """Create jobs all together, in order; all are validated before any is written."""
        ...

    async def get(self, job_id: str) -> Job:
        """The job; `JobNotFound` when there is none."""
        ...

    async def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]:
        """Cancel the job at once, or ask its worker to stop it when it is running."""
        ...

    async def replay(self, job_id: str) -> Job:
        """Run a failed or canceled job again; `InvalidTransition` for other statuses."""
        ...

    async def list(self, **filters: Unpack[ListFilter]) -> Page:
        """One page of jobs, newest first."""
        ...

    async def queues(self) -> Queues:
        """Statistics of every known queue, sorted by name."""
        ...

    async def queue(self, name: str) -> QueueStats | None:
        """Statistics of one queue; None when no job was ever enqueued to it."""
        ...

    async def pause_queue(self, name: str) -> QueueStats | None:
        """Pause the queue: none of its jobs starts until it is resumed (running ones
        finish). Its statistics after; None when no job was ever enqueued to it."""
        ...

    async def resume_queue(self, name: str) -> QueueStats | None:
        """Resume a paused queue; its statistics after, None when it is unknown."""
        ...

    async def workers(self) -> Workers:
        """The live workers, sorted by id."""
        ...

    async def resize_worker(self, worker_id: str, concurrency: int | None) -> bool:
        """Ask a running worker to run `concurrency` jobs at once (None: back to its
        queue's or its own); it applies it within a second. False when it is not live."""
        ...

    async def resize_queue(self, queue: str, concurrency: int | None) -> bool:
        """Ask every worker of `queue` to run `concurrency` jobs at once (None clears it;
        a worker's own value wins). False when no such queue is known."""
        ...

    async def aclose(self) -> None: ...

    async def __aenter__(self) -> Self: ...

    async def __aexit__(self, *exc: object) -> None: ...


class SyncJobsClient(Protocol):
    """The blocking client: `conveyor.SyncClient` and `conveyor.SyncHttpClient`, with the
    methods of `AsyncJobsClient`."""

    def enqueue(
        self, job_type: str, payload: Any = None, **options: Unpack[EnqueueOptions]
    ) -> Job: ...

    def enqueue_many(self, jobs: Iterable[Item], *, correlation_id: str | None = None) -> Jobs: ...

    def get(self, job_id: str) -> Job: ...

    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]: ...

    def replay(self, job_id: str) -> Job: ...

    def list(self, **filters: Unpack[ListFilter]) -> Page: ...

    def queues(self) -> Queues: ...

    def queue(self, name: str) -> QueueStats | None: ...

    def pause_queue(self, name: str) -> QueueStats | None: ...

    def resume_queue(self, name: str) -> QueueStats | None: ...

    def workers(self) -> Workers: ...

    def resize_worker(self, worker_id: str, concurrency: int | None) -> bool: ...

    def resize_queue(self, queue: str, concurrency: int | None) -> bool: ...

    def close(self) -> None: ...

    def __enter__(self) -> Self: ...

    def __exit__(self, *exc: object) -> None: ...


class AsyncClosing(ABC):
    """``async with client:`` for the async clients: `aclose` at the end of the block."""

    @abstractmethod
    async def aclose(self) -> None:
        """Close the client's connections."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()
