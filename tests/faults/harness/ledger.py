"""Counting executions exactly: the handlers' ledger (outside Redis) against the job hashes.

- lost: an accepted job (its POST got a 201) that did not reach its expected final status,
  or reached `completed` without any execution in the ledger;
- duplicated: executions beyond the first one of a job (ledger `start` lines);
- explained: duplicates accounted for by the job's recorded reclaims (the `lost` field the
  claim script bumps when it takes a job over from a worker that stopped renewing its
  lease). A duplicate is explained when starts - 1 <= lost.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any


@dataclass(slots=True)
class Tally:
    jobs: int
    final: Counter[str]  # final status -> jobs
    lost: list[str] = field(default_factory=list)
    duplicated: int = 0
    explained: int = 0
    unexplained: list[str] = field(default_factory=list)
    reclaims: int = 0  # sum of the jobs' `lost` fields
    # Jobs that ran though their POST was not answered 201 (a 503 or no answer): created
    # after all, an outcome the client could not know.
    unaccepted: int = 0
    starts: Counter[str] = field(default_factory=Counter)
    ends: Counter[str] = field(default_factory=Counter)

    def summary(self) -> dict[str, Any]:
        return {
            "final": dict(self.final),
            "reclaims": self.reclaims,
            "executions": sum(self.starts.values()),
            "unexplained": len(self.unexplained),
            "ran_without_201": self.unaccepted,
        }


def _int(h: Mapping[str, bytes], name: str) -> int:
    raw = h.get(name)
    return int(raw) if raw else 0


def tally(
    accepted: Iterable[str],
    hashes: Mapping[str, Mapping[str, bytes]],
    ledger: Iterable[Mapping[str, Any]],
    *,
    expected: Iterable[str] = ("completed",),
) -> Tally:
    ids = list(dict.fromkeys(accepted))
    wanted = set(expected)
    starts: Counter[str] = Counter()
    ends: Counter[str] = Counter()
    for line in ledger:
        if line.get("event") == "start":
            starts[str(line["job_id"])] += 1
        elif line.get("event") == "end":
            ends[str(line["job_id"])] += 1
    result = Tally(jobs=len(ids), final=Counter(), starts=starts, ends=ends)
    result.unaccepted = len(set(starts) - set(ids))
    for job_id in ids:
        h = hashes.get(job_id, {})
        status = h.get("status", b"missing").decode()
        result.final[status] += 1
        if status not in wanted or (status == "completed" and ends[job_id] == 0):
            result.lost.append(job_id)
        reclaims = _int(h, "lost")
        result.reclaims += reclaims
        extra = max(starts[job_id] - 1, 0)
        result.duplicated += extra
        if extra:
            if extra <= reclaims:
                result.explained += extra
            else:
                result.unexplained.append(job_id)
    return result


def recovery_after_kills(
    ledger: Iterable[Mapping[str, Any]], kills: Iterable[tuple[int, float]]
) -> list[float]:
    """For every execution that followed one cut short by a kill: seconds from the kill of
    the process that ran the earlier execution to the start of the next one.

    `kills`: (pid, time.time()) of each SIGKILL."""
    killed: dict[int, list[float]] = {}
    for pid, at in kills:
        killed.setdefault(pid, []).append(at)
    by_job: dict[str, list[Mapping[str, Any]]] = {}
    for line in ledger:
        if line.get("event") == "start":
            by_job.setdefault(str(line["job_id"]), []).append(line)
    gaps: list[float] = []
    for starts in by_job.values():
        starts.sort(key=lambda line: float(line["t"]))
        for earlier, later in pairwise(starts):
            times = [
                at
                for at in killed.get(int(earlier["pid"]), [])
                if float(earlier["t"]) <= at <= float(later["t"])
            ]
            if times:
                gaps.append(float(later["t"]) - max(times))
    return gaps
