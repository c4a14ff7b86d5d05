"""Listens for cancel requests of running jobs and stops the ones this worker runs.

The pub/sub message is the fast path; the lease renewal also reports `cancel_requested`,
so a message missed while disconnected still stops the job within one renewal interval.
"""

from __future__ import annotations

import asyncio
import logging
import random

from redis.asyncio import Redis

from conveyor.redis_errors import STORE_ERRORS
from conveyor.worker.executor import Attempt, StopReason

log = logging.getLogger("conveyor.worker")


class CancelListener:
    def __init__(self, redis: Redis, channel: str, attempts: dict[str, Attempt]) -> None:
        self.redis = redis
        self.channel = channel
        self.attempts = attempts

    async def run(self) -> None:
        delay = 0.1
        while True:
            try:
                await self._listen()
            except STORE_ERRORS as exc:
                log.warning("cancel listener disconnected", extra={"error": str(exc)})
                await asyncio.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 5.0)

    async def _listen(self) -> None:
        pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.channel)
            while True:
                message = await pubsub.get_message(timeout=1.0)
                if message is None:
                    continue
                job_id = message["data"].decode()
                attempt = self.attempts.get(job_id)
                if attempt is not None:
                    log.info("cancel requested; stopping the job", extra=attempt.log_fields())
                    attempt.stop(StopReason.CANCEL)
        finally:
            await pubsub.aclose()  # type: ignore[no-untyped-call]
