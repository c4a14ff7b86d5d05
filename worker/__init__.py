"""Conveyor's worker side: handlers, the worker process and the scheduler.

Handler authors need only::

    from worker import handler, JobContext, PermanentError

    @handler("reports.build", max_attempts=5, timeout=60)
    async def build(ctx: JobContext, payload): ...
"""

from worker.context import JobContext
from worker.errors import JobCancelled, PermanentError
from worker.registry import Registry, default_registry, handler

__all__ = [
    "JobCancelled",
    "JobContext",
    "PermanentError",
    "Registry",
    "default_registry",
    "handler",
]
