"""Reading the job hashes of a benchmark phase: times (Redis clock, epoch ms) and outcome."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import msgpack
import redis

from conveyor.store.keys import Keys

CHUNK = 1000


@dataclass(frozen=True, slots=True)
class JobTimes:
    created_at: int
    started_at: int | None
    finished_at: int | None
    attempts: int
    status: str
    result: Any  # the handler's return value (None when there is none)


def _int(value: bytes | None) -> int | None:
    return int(value) if value not in (None, b"") else None


def read(client: redis.Redis, prefix: str, queue: str, ids: list[str]) -> list[JobTimes]:
    keys = Keys(prefix).queue(queue)
    out: list[JobTimes] = []
    for start in range(0, len(ids), CHUNK):
        pipe = client.pipeline(transaction=False)
        for job_id in ids[start : start + CHUNK]:
            pipe.hmget(
                keys.job(job_id),
                "created_at",
                "started_at",
                "finished_at",
                "attempts",
                "status",
                "result",
            )
        for created, started, finished, attempts, status, result in pipe.execute():
            out.append(
                JobTimes(
                    created_at=_int(created) or 0,
                    started_at=_int(started),
                    finished_at=_int(finished),
                    attempts=_int(attempts) or 0,
                    status=status.decode() if status else "missing",
                    result=msgpack.unpackb(result) if result else None,
                )
            )
    return out


def now_ms(client: redis.Redis) -> int:
    seconds, micros = client.time()
    return int(seconds) * 1000 + int(micros) // 1000
