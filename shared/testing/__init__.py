"""Test handlers and whole job flows in-process, with no Redis server.

`ConveyorTest` runs the real producer client (`conveyor.Client`) and the real worker
machinery (claim, handler call under its timeout, complete/fail/retry/cancel) on an
in-memory Redis, fakeredis with its Lua support, so every state change goes through the
same Lua scripts as in production; `SyncConveyorTest` is its form for synchronous tests.
`make_context` builds a `JobContext` for calling one handler directly. Needs the extra:
``pip install 'conveyor[testing]'``.

What differs from a deployed worker:

- Nothing runs in the background: jobs run while `ConveyorTest.drain` is awaited.
- No scheduler: delayed jobs (scheduled, or retrying after a failed attempt) stay
  delayed until `drain(include_delayed=True)` or `promote_due()` moves them.
- An async handler that swallows the cancellation of its timeout is not given up on, as
  a worker gives up on it (writing its timed-out failure for it): `drain` waits for it
  until its own `timeout`, then raises `DrainTimeout` and leaves it running.
- A cancel reaches a running job through the lease renewal (every 20 ms while `drain`
  runs), not through the worker's pub/sub fast path.
- Crash recovery (taking over the jobs of a dead worker, poison jobs, their last chance
  run alone) is not exercised: there is one worker, and it does not die.

Every production transition script (enqueue, claim, complete, fail, requeue, cancel,
replay, promote, renew, expire, purge, release_consumer) runs unchanged on fakeredis,
and Conveyor's own tests run each one there. fakeredis keeps time by the machine's clock:
Redis TIME in the scripts is the real time, which is why delays are skipped by moving the
jobs' due times (`drain(include_delayed=True)`) rather than by moving a clock.
"""

from __future__ import annotations

from importlib.util import find_spec

# fakeredis runs Lua scripts only with lupa installed (its `lua` extra): both are checked
# here, so a missing one is named with the extra that brings it.
_MISSING = [name for name in ("fakeredis", "lupa") if find_spec(name) is None]
if _MISSING:
    raise ImportError(
        f"conveyor.testing needs fakeredis with Lua support ({', '.join(_MISSING)} is not "
        "installed): pip install 'conveyor[testing]'"
    )

from conveyor.testing.context import make_context  # noqa: E402 - after the check
from conveyor.testing.harness import AttemptResult, ConveyorTest, DrainTimeout  # noqa: E402
from conveyor.testing.sync import SyncConveyorTest  # noqa: E402

__all__ = ["AttemptResult", "ConveyorTest", "DrainTimeout", "SyncConveyorTest", "make_context"]
