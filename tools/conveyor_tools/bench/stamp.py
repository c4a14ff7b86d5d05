"""The handler of the bench's latency phase: ``bench.stamp`` returns the moment it started.

Job timestamps are whole Redis milliseconds, too coarse for sub-millisecond pickup
latency. This handler's result is the host clock in microseconds when its attempt began;
the producer notes the same clock just before it sends each job, so the difference is the
job's whole way from the producer to a running handler (both processes run on one host,
so one clock). Imported by the bench's latency workers through ``CONVEYOR_HANDLERS``.
"""

from __future__ import annotations

import time
from typing import Any

from conveyor.worker.context import JobContext
from conveyor.worker.registry import handler

JOB_TYPE = "bench.stamp"


@handler(JOB_TYPE)
async def stamp(ctx: JobContext, payload: Any) -> int:
    return time.time_ns() // 1000
