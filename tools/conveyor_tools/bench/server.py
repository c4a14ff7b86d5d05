"""The Redis a benchmark runs against: a private redis-server, or a given URL."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conveyor.redis_conn import connect_url_sync
from conveyor.store.keys import Keys
from conveyor_tools.devrun import start_private_redis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class Target:
    url: str
    prefix: str
    private: bool


@contextmanager
def bench_redis(url: str | None) -> Iterator[Target]:
    """A private redis-server on a free port (AOF everysec, as `conveyor dev` runs it),
    removed afterwards; or `url` with a unique key prefix whose keys are deleted after."""
    if url is None:
        directory = Path(tempfile.mkdtemp(prefix="conveyor-bench-"))
        private_url = f"redis://127.0.0.1:{free_port()}/0"
        process = start_private_redis(private_url, directory)
        try:
            yield Target(private_url, "bench", private=True)
        finally:
            _stop(process)
            shutil.rmtree(directory, ignore_errors=True)
        return
    target = Target(url, f"bench-{uuid.uuid4().hex[:12]}", private=False)
    try:
        yield target
    finally:
        delete_prefix(url, target.prefix)


def _stop(process: subprocess.Popen[bytes]) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)


def forget_queue(client: Any, prefix: str, queue: str, job_ids: Iterable[str]) -> None:
    """After its keys were deleted: take `queue` out of the registry and its jobs out of
    the id index (keys outside the queue's own, docs/redis-layout.md)."""
    keys = Keys(prefix)
    with client.pipeline(transaction=False) as pipe:
        for job_id in job_ids:
            pipe.hdel(keys.id_index(job_id), job_id)
        pipe.srem(keys.queues, queue)
        pipe.hdel(keys.queue_generations, queue)
        pipe.execute()


def delete_prefix(url: str, prefix: str) -> int:
    """Delete every key under `prefix:` (bounded by the key count SCAN returns)."""
    client = connect_url_sync(url, timeout_seconds=10)
    deleted = 0
    try:
        batch: list[bytes] = []
        for key in client.scan_iter(match=f"{prefix}:*", count=1000):
            batch.append(key)
            if len(batch) >= 1000:
                deleted += int(client.unlink(*batch))
                batch.clear()
        if batch:
            deleted += int(client.unlink(*batch))
    finally:
        client.close()
    return deleted
