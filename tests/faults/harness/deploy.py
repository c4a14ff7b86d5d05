"""Starting a standard deployment for a scenario: API, workers and scheduler against one
redis-server, with the short timings fault tests use."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import redis

from tests.e2e.system import Process, System
from tests.faults.harness.load import Poster


def start_all(system: System, workers: int = 2, schedulers: int = 1) -> list[Process]:
    system.start_api()
    started = [system.start("worker") for _ in range(workers)]
    started += [system.start("scheduler") for _ in range(schedulers)]
    return started


def exited(processes: Sequence[Process]) -> list[str]:
    """`role pid rc` of every process that is no longer running."""
    return [
        f"{p.role} {p.popen.pid} rc={p.popen.returncode}"
        for p in processes
        if p.popen.poll() is not None
    ]


def first_success_after(poster: Poster, moment: float) -> float | None:
    """Seconds from `moment` (time.time()) to the answer of the first 201 sent after it."""
    times = [
        sent + took - moment
        for sent, took, status in poster.latencies
        if status == 201 and sent >= moment
    ]
    return min(times) if times else None


def info_field(r: redis.Redis, section: str, name: str) -> int:
    info = r.info(section)
    return int(info.get(name, 0))


def noisy_lines(process: Process, since: float, until: float) -> int:
    """WARNING and ERROR log lines `process` wrote between two time.time() moments."""
    count = 0
    for line in process.log_lines():
        ts = line.get("ts")
        if not isinstance(ts, str) or line.get("level") not in ("WARNING", "ERROR"):
            continue
        at = datetime.fromisoformat(ts.replace("Z", "+00:00")).timestamp()
        if since <= at <= until:
            count += 1
    return count
