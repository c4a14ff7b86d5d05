"""Conveyor's worker side: handlers, the worker process and the scheduler.

Handler authors need only::

    from conveyor.worker import handler, JobContext, PermanentError

    @handler("reports.build", max_attempts=5, timeout=60)
    async def build(ctx: JobContext, payload): ...
"""

from conveyor.worker.context import JobContext
from conveyor.worker.errors import JobCancelled, PermanentError
from conveyor.worker.registry import Registry, default_registry, handler

__all__ = [
    "JobCancelled",
    "JobContext",
    "PermanentError",
    "Registry",
    "default_registry",
    "handler",
]
