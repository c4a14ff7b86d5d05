"""T7, hang variant: a job whose handler hangs and ignores the stop, with a 1 s timeout and
3 attempts, on one worker that runs normal jobs alongside. Two handlers: a sync one that
blocks in time.sleep and never looks at ctx.cancelled, and an async one that swallows every
CancelledError.

Pass:
- the hanging job is ended by its timeout under the retry policy: `failed` after exactly
  3 attempts, each `timed out` in its history, last_error naming the timeout, within
  3 x (timeout + longest backoff) + slack;
- every normal job completes, async ones alongside the hang and sync ones after it (the
  thread pool still has room), without duplicates: the worker keeps serving;
- the worker still stops on SIGTERM with exit code 0 within the shutdown timeout + the 10 s
  it gives stopped jobs (docs/runbook.md, "Drain a worker"), + slack.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from conveyor.job import Outcome, parse_history
from conveyor.store.keys import Keys
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.ledger import tally
from tests.faults.harness.load import post_batch
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder
from tests.helpers.wait import eventually

pytestmark = pytest.mark.faults

QUEUE = "default"
TIMEOUT = 1.0
ATTEMPTS = 3
RETRY_MAX = 0.2  # CONVEYOR_RETRY_MAX_SECONDS of the test deployment (tests/e2e/system.py)
SLACK = 10.0
HANG_SECONDS = 3600  # far longer than the test: the handler never ends on its own
CONCURRENCY = 4  # thread pool size too: room for the hung attempts and the sync jobs
SHUTDOWN_TIMEOUT = 1.0
STOP_BOUND = SHUTDOWN_TIMEOUT + 10 + 3  # grace, the wait for stopped jobs, slack
SYNC_AFTER = 10  # sync jobs created once the hanging job has failed

HANDLERS = {
    "sync": "test.ignore_cancel",  # time.sleep in the pool, never checks ctx.cancelled
    "async": "test.shield",  # swallows every CancelledError
}


def reached(check: Callable[[], bool], timeout: float, what: str) -> bool:
    """Poll `check` until it holds or `timeout` passes; whether it held."""
    try:
        eventually(check, timeout=timeout, interval=0.2, what=what)
    except AssertionError:
        return False
    return True


def threads_of(pid: int) -> int:
    return len(list(Path(f"/proc/{pid}/task").iterdir()))


@pytest.mark.parametrize("kind", sorted(HANDLERS))
def test_a_hanging_job_is_ended_by_its_timeout(
    kind: str,
    make_redis: MakeRedis,
    make_system: MakeSystem,
    profile: Profile,
    recorder: Recorder,
) -> None:
    server = make_redis(appendonly=True)
    system = make_system(
        server.url,
        CONVEYOR_CONCURRENCY=str(CONCURRENCY),
        CONVEYOR_SHUTDOWN_TIMEOUT_SECONDS=str(SHUTDOWN_TIMEOUT),
    )
    system.start_api()
    worker = system.start("worker")
    system.start("scheduler")  # brings the retries back
    worker.wait_logged("worker started", timeout=45)
    r = redisio.client(server.url)
    keys = Keys(system.prefix)

    others = [
        {"type": "test.record", "payload": {"ms": 5 + i % 45}} for i in range(profile.poison_others)
    ]
    half = len(others) // 2
    ids = post_batch(system.api, others[:half])
    began = time.monotonic()
    [hang] = post_batch(
        system.api,
        [
            {
                "type": HANDLERS[kind],
                "payload": {"seconds": HANG_SECONDS},
                "timeout_seconds": TIMEOUT,
                "max_attempts": ATTEMPTS,
            }
        ],
    )
    ids += post_batch(system.api, others[half:])
    bound = ATTEMPTS * (TIMEOUT + RETRY_MAX) + SLACK
    ended = reached(
        lambda: redisio.statuses(r, keys, QUEUE, [hang])[hang] == "failed",
        bound,
        "the hanging job failed",
    )
    took = time.monotonic() - began
    ids += post_batch(
        system.api, [{"type": "test.ignore_cancel", "payload": {"seconds": 0.05}}] * SYNC_AFTER
    )
    served = reached(
        lambda: redisio.all_in(r, keys, QUEUE, ids, {"completed", "failed", "canceled"}),
        60,
        "every normal job finished",
    )
    alive = worker.popen.poll() is None
    threads = threads_of(worker.popen.pid) if alive else 0
    [h] = redisio.job_hashes(r, keys, QUEUE, [hang]).values()
    history = parse_history(h.get("history"))
    ledger = system.ledger_lines()
    hang_runs = sum(1 for line in ledger if line["job_id"] == hang and line["event"] == "start")
    normal = [line for line in ledger if line["job_id"] != hang]
    result = tally(ids, redisio.job_hashes(r, keys, QUEUE, ids), normal)

    stop_began = time.monotonic()
    worker.signal(signal.SIGTERM)
    try:
        exit_code: int | None = worker.wait(STOP_BOUND)
        stop_s: float | None = round(time.monotonic() - stop_began, 2)
    except subprocess.TimeoutExpired:
        worker.kill()
        exit_code, stop_s = None, None
    recorder.record(
        Figures(
            scenario=f"T7 hanging job ({kind} handler ignoring the stop)",
            jobs=len(ids) + 1,
            faults=f"1 {kind} handler hanging {HANG_SECONDS} s, timeout {TIMEOUT:g} s, "
            f"{ATTEMPTS} attempts; {len(ids)} normal jobs alongside",
            lost=len(result.lost),
            duplicated=result.duplicated,
            explained=result.explained,
            recovery_s=round(took, 2) if ended else None,
            details={
                **result.summary(),
                "hang_status": h.get("status", b"missing").decode(),
                "hang_attempts": int(h.get("attempts", b"0")),
                "hang_executions": hang_runs,
                "hang_history": [a.outcome for a in history],
                "hang_last_error": h.get("last_error", b"").decode(),
                "cancels_ignored": sum(
                    1
                    for line in ledger
                    if line["job_id"] == hang and line["event"] == "cancel_ignored"
                ),
                "worker_threads_after": threads,
                "sigterm_exit_code": exit_code,
                "sigterm_exit_s": stop_s,
            },
        )
    )
    assert ended, f"the hanging job is {h.get('status')!r} after {bound:g} s, not failed"
    assert hang_runs == ATTEMPTS
    assert int(h["attempts"]) == ATTEMPTS
    assert [a.outcome for a in history] == [Outcome.TIMED_OUT] * ATTEMPTS
    assert h["last_error"].decode().startswith(f"timed out after {TIMEOUT:g}s")
    assert served
    assert alive
    assert result.lost == []
    assert result.duplicated == 0
    assert exit_code == 0, f"the worker did not stop within {STOP_BOUND:g} s of SIGTERM"
    redisio.assert_invariants(server.url, system.prefix)
