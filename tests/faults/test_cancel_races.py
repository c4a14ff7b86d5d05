"""T8: cancellations at random moments: before a job is read, just as it is claimed, while
it runs, as it finishes; some jobs get two concurrent DELETEs.

Pass: every job ends in exactly one terminal state, consistent with what DELETE answered
and with its history and the ledger:
- 200 (canceled at once): the job ends canceled and never ran;
- 202 (running, asked to stop): it ends canceled or, if it finished first, completed;
- 409 (already finished): it ends completed, or canceled by the other concurrent DELETE;
- completed: exactly one execution ended, last history item `completed`, none `canceled`;
- canceled: no history item `completed`; if it ran, its last item is `canceled`.
"""

from __future__ import annotations

import heapq
import json
import random
import threading
import time
from collections import defaultdict

import httpx
import pytest

from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.deploy import start_all
from tests.faults.harness.load import post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.http import JSON
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults


class Canceller:
    """Threads that send each DELETE at its planned moment (time.monotonic()), while the
    test keeps creating jobs."""

    def __init__(self, api: str, threads: int = 8) -> None:
        self.api = api
        self.answers: dict[str, list[int]] = defaultdict(list)
        self.sent = 0
        self._plan: list[tuple[float, str]] = []
        self._cond = threading.Condition()
        self._closed = False
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]
        for t in self._threads:
            t.start()

    def at(self, moment: float, job_id: str) -> None:
        with self._cond:
            heapq.heappush(self._plan, (moment, job_id))
            self.sent += 1
            self._cond.notify()

    def _next(self) -> str | None:
        with self._cond:
            while True:
                if self._plan:
                    wait = self._plan[0][0] - time.monotonic()
                    if wait <= 0:
                        return heapq.heappop(self._plan)[1]
                    self._cond.wait(wait)
                elif self._closed:
                    return None
                else:
                    self._cond.wait(0.1)

    def _run(self) -> None:
        with httpx.Client(base_url=self.api, timeout=10) as http:
            while (job_id := self._next()) is not None:
                status = http.delete(f"/jobs/{job_id}", headers=JSON).status_code
                with self._cond:
                    self.answers[job_id].append(status)

    def finish(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        for t in self._threads:
            t.join(60)


def _problems(
    job_id: str, h: dict[str, bytes], answers: list[int], starts: int, ends: int
) -> list[str]:
    status = h["status"].decode()
    outcomes = [item["outcome"] for item in json.loads(h.get("history", b"[]"))]
    say: list[str] = []
    if status not in ("completed", "canceled"):
        say.append(f"{job_id}: ended {status}")
    if 200 in answers and (status != "canceled" or starts):
        say.append(f"{job_id}: DELETE said 200 but it is {status} after {starts} starts")
    if 409 in answers and status == "canceled" and not {200, 202} & set(answers):
        say.append(f"{job_id}: DELETE said 409 (finished) but it ended canceled")
    if status == "completed" and (ends != 1 or outcomes[-1:] != ["completed"]):
        say.append(f"{job_id}: completed with {ends} ends, history {outcomes}")
    if "canceled" in outcomes and "completed" in outcomes:
        say.append(f"{job_id}: history has both completed and canceled: {outcomes}")
    if status == "canceled" and starts and outcomes[-1:] != ["canceled"]:
        say.append(f"{job_id}: canceled after running, history {outcomes}")
    if set(answers) - {200, 202, 409}:
        say.append(f"{job_id}: DELETE answered {answers}")
    return say


def test_cancellations_racing_every_stage_of_a_job(
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(server.url, CONVEYOR_CONCURRENCY="4")
    start_all(system, workers=1, schedulers=0)  # busy enough that some jobs wait
    n = profile.cancel_jobs
    durations = [random.choice([0, 0, random.randint(1, 200)]) for _ in range(n)]
    jobs = [{"type": "test.record", "payload": {"ms": ms}} for ms in durations]
    # Jobs go in over the run, so some wait, some are just read, some run, some finish.
    spread = 2.0 if profile.name == "ci" else 5.0
    ids: list[str] = []
    canceller = Canceller(system.api)
    began = time.monotonic()
    chunk = max(n // 20, 1)
    for start in range(0, n, chunk):
        created = time.monotonic()
        new = post_batch(system.api, jobs[start : start + chunk])
        for job_id in new:
            moment = created + random.uniform(-0.05, 0.25)
            canceller.at(moment, job_id)
            if random.random() < 0.1:
                canceller.at(moment, job_id)  # a concurrent second DELETE
        ids += new
        time.sleep(max(began + spread * (start + chunk) / n - time.monotonic(), 0))
    canceller.finish()
    answers = canceller.answers

    r = redisio.client(server.url)
    keys = Keys(system.prefix)
    eventually(
        lambda: redisio.all_in(r, keys, "default", ids, {"completed", "canceled"}),
        timeout=30,
        interval=0.2,
        what="every job finished",
    )
    hashes = redisio.job_hashes(r, keys, "default", ids)
    starts: dict[str, int] = defaultdict(int)
    ends: dict[str, int] = defaultdict(int)
    for line in system.ledger_lines():
        (starts if line["event"] == "start" else ends)[line["job_id"]] += 1
    problems = [
        p
        for job_id in ids
        for p in _problems(job_id, hashes[job_id], answers[job_id], starts[job_id], ends[job_id])
    ]
    codes: dict[int, int] = defaultdict(int)
    for statuses in answers.values():
        for code in statuses:
            codes[code] += 1
    final: dict[str, int] = defaultdict(int)
    for h in hashes.values():
        final[h["status"].decode()] += 1
    recorder.record(
        Figures(
            scenario="T8 cancellation races",
            jobs=len(ids),
            faults=f"{canceller.sent} DELETEs at -50..+250 ms of creation, 10 % doubled",
            lost=sum(1 for h in hashes.values() if h["status"] not in (b"completed", b"canceled")),
            duplicated=sum(max(s - 1, 0) for s in starts.values()),
            explained=0,
            details={
                "delete_answers": dict(codes),
                "final": dict(final),
                "inconsistent": len(problems),
                "ran_then_canceled": sum(
                    1 for i in ids if hashes[i]["status"] == b"canceled" and starts[i]
                ),
            },
        )
    )
    assert problems == []
    assert all(starts[i] <= 1 for i in ids)
    redisio.assert_invariants(server.url, system.prefix)
