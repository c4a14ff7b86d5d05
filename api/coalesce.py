"""Group commit for `POST /jobs`: the jobs of concurrent requests go to Redis together.

Under load many requests reach the enqueue step in the same turn of the event loop. Each
would pay for its own Redis round trip (a pipeline, a script call, a reply to parse);
sent together they pay for one, and every job still gets its own answer. A request never
waits for others: the jobs collected during one turn of the loop are sent at the end of
that turn, so a lone request costs one extra loop turn (microseconds).

Only jobs without an idempotency key are grouped, and only with jobs of the same queue:
the enqueue script is atomic per queue chunk, so a request could otherwise see an error
caused by another request's job (an idempotency conflict) or by another queue's keys.
What can fail a group (Redis unreachable, a queue's keys of the wrong type) fails each of
its requests alike, as it would have alone; too few replicas confirming the write (WAIT)
is reported to each request for its own job only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Protocol

from conveyor.errors import NotReplicated
from conveyor.values import Created, NewJob


class Creates(Protocol):
    async def create(self, jobs: Sequence[NewJob]) -> list[Created]: ...


_Waiting = list[tuple[NewJob, "asyncio.Future[Created]"]]


class CreateCoalescer:
    """`create(job)` for one job; concurrent calls share Redis round trips."""

    def __init__(self, store: Creates, max_jobs: int = 100) -> None:
        self.store = store
        self.max_jobs = max_jobs
        self._waiting: dict[str, _Waiting] = {}  # queue -> jobs of this loop turn
        self._tasks: set[asyncio.Task[None]] = set()
        self.groups = 0  # round trips sent, for tests and the curious
        self.jobs = 0

    async def create(self, job: NewJob) -> Created:
        if job.idempotency_key:
            [created] = await self.store.create([job])
            return created
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Created] = loop.create_future()
        waiting = self._waiting.get(job.queue)
        if waiting is None:
            waiting = self._waiting[job.queue] = []
            loop.call_soon(self._send, job.queue)
        waiting.append((job, future))
        if len(waiting) >= self.max_jobs:
            self._send(job.queue)
        return await future

    def _send(self, queue: str) -> None:
        group = self._waiting.pop(queue, None)
        if not group:
            return
        task = asyncio.create_task(self._create(group))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _create(self, group: _Waiting) -> None:
        self.groups += 1
        self.jobs += len(group)
        try:
            results = await self.store.create([job for job, _ in group])
        except NotReplicated as exc:  # each request learns of its own job only
            for job, future in group:
                if not future.done():
                    future.set_exception(NotReplicated([job.id], exc.acknowledged, exc.required))
            return
        except BaseException as exc:  # every request of the group learns it
            for _, future in group:
                if not future.done():
                    future.set_exception(exc)
            if not isinstance(exc, Exception):
                raise
            return
        for (_, future), created in zip(group, results, strict=True):
            if not future.done():  # a request that timed out has stopped waiting
                future.set_result(created)
