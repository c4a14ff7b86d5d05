"""INFO counters of the Redis under test, and their differences between two moments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import redis


@dataclass(frozen=True)
class Sample:
    cpu: float  # used_cpu_sys + used_cpu_user, seconds
    calls: dict[str, int]  # command name -> calls (scripted commands included)
    used_memory: int

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def sample(client: redis.Redis) -> Sample:
    cpu = client.info("cpu")
    stats = client.info("commandstats")
    memory = client.info("memory")
    calls = {
        name.removeprefix("cmdstat_"): int(value["calls"])
        for name, value in stats.items()
        if isinstance(value, dict)
    }
    return Sample(
        cpu=float(cpu["used_cpu_sys"]) + float(cpu["used_cpu_user"]),
        calls=calls,
        used_memory=int(memory["used_memory"]),
    )


# The commands `sample` itself issues (three INFO calls) show up in the next sample.
OWN_CALLS_PER_SAMPLE = 3


@dataclass(frozen=True)
class Delta:
    cpu: float
    calls: dict[str, int]
    used_memory: int

    @property
    def total_calls(self) -> int:
        return sum(self.calls.values())


def delta(before: Sample, after: Sample, own: dict[str, int] | None = None) -> Delta:
    """after - before, minus the calls the measuring side made (`own`, by command name)."""
    own = {"info": OWN_CALLS_PER_SAMPLE, **(own or {})}
    calls = {}
    for name, count in after.calls.items():
        diff = count - before.calls.get(name, 0) - own.get(name, 0)
        if diff > 0:
            calls[name] = diff
    return Delta(after.cpu - before.cpu, calls, after.used_memory - before.used_memory)


def top_calls(d: Delta, jobs: int, limit: int = 8) -> dict[str, float]:
    ranked = sorted(d.calls.items(), key=lambda kv: -kv[1])[:limit]
    return {name: round(count / jobs, 2) for name, count in ranked}


def server_version(client: redis.Redis) -> str:
    info: dict[str, Any] = client.info("server")
    return str(info.get("redis_version", "?"))
