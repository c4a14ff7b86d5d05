"""Conveyor: a distributed job processor on Redis Streams.

Everything an application needs is importable from here; every other module is internal
and may change between releases::

    import conveyor

    @conveyor.handler("reports.build", max_attempts=5, timeout=60)
    async def build(ctx: conveyor.JobContext, payload: dict) -> dict: ...

    async with conveyor.Client.from_url("redis://localhost:6379/0") as client:
        job = await client.enqueue("reports.build", {"month": "2026-11"})

Names are loaded on first use, so importing `conveyor` costs nothing a process does not
use (a producer never imports the worker, a worker never imports the HTTP client).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conveyor.backoff import RetryPolicy
    from conveyor.client import Client, SyncClient
    from conveyor.client_api import AsyncJobsClient, SyncJobsClient
    from conveyor.errors import (
        ConfigError,
        ConveyorError,
        DuplicateJob,
        IdempotencyConflict,
        InvalidTransition,
        JobNotFound,
        NotReplicated,
        PayloadTooLarge,
        QueueLimitReached,
        StoreUnavailable,
        ValidationError,
    )
    from conveyor.http_client import ApiError, HttpClient, SyncHttpClient
    from conveyor.job import Job
    from conveyor.states import Status
    from conveyor.values import CancelOutcome, Page, QueueStats, WorkerInfo
    from conveyor.worker.context import JobContext
    from conveyor.worker.errors import JobCancelled, PermanentError
    from conveyor.worker.registry import handler
    from conveyor.worker.task import Task

# public name -> the module that defines it
_HOMES = {
    "handler": "conveyor.worker.registry",
    "Task": "conveyor.worker.task",
    "JobContext": "conveyor.worker.context",
    "PermanentError": "conveyor.worker.errors",
    "JobCancelled": "conveyor.worker.errors",
    "RetryPolicy": "conveyor.backoff",
    "Client": "conveyor.client",
    "SyncClient": "conveyor.client",
    "HttpClient": "conveyor.http_client",
    "SyncHttpClient": "conveyor.http_client",
    "ApiError": "conveyor.http_client",
    "AsyncJobsClient": "conveyor.client_api",
    "SyncJobsClient": "conveyor.client_api",
    "CancelOutcome": "conveyor.values",
    "Page": "conveyor.values",
    "QueueStats": "conveyor.values",
    "WorkerInfo": "conveyor.values",
    "Job": "conveyor.job",
    "Status": "conveyor.states",
    "ConveyorError": "conveyor.errors",
    "ConfigError": "conveyor.errors",
    "ValidationError": "conveyor.errors",
    "PayloadTooLarge": "conveyor.errors",
    "JobNotFound": "conveyor.errors",
    "InvalidTransition": "conveyor.errors",
    "DuplicateJob": "conveyor.errors",
    "IdempotencyConflict": "conveyor.errors",
    "NotReplicated": "conveyor.errors",
    "QueueLimitReached": "conveyor.errors",
    "StoreUnavailable": "conveyor.errors",
}

__all__ = [
    "ApiError",
    "AsyncJobsClient",
    "CancelOutcome",
    "Client",
    "ConfigError",
    "ConveyorError",
    "DuplicateJob",
    "HttpClient",
    "IdempotencyConflict",
    "InvalidTransition",
    "Job",
    "JobCancelled",
    "JobContext",
    "JobNotFound",
    "NotReplicated",
    "Page",
    "PayloadTooLarge",
    "PermanentError",
    "QueueLimitReached",
    "QueueStats",
    "RetryPolicy",
    "Status",
    "StoreUnavailable",
    "SyncClient",
    "SyncHttpClient",
    "SyncJobsClient",
    "Task",
    "ValidationError",
    "WorkerInfo",
    "handler",
]


if not TYPE_CHECKING:  # type checkers see the imports above, so a misspelt name is an error

    def __getattr__(name: str) -> Any:
        home = _HOMES.get(name)
        if home is None:
            raise AttributeError(f"module 'conveyor' has no attribute {name!r}")
        value = getattr(importlib.import_module(home), name)
        globals()[name] = value  # later lookups skip this function
        return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
