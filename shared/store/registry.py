"""The queue registry (`<prefix>:queues`): which queues hold jobs, at most `max_queues`.

Every reader that walks "all queues" (statistics, the scheduler, the reclaimer) walks this
set, so its size bounds their work. A create registers its queues first
(`register`, capped); a queue found empty leaves again (`retire_drained`, run by the
scheduler). The registry and a queue's keys live in different Redis Cluster slots, so no
one script can check "empty" and remove the name together; a generation per registration
makes the two steps safe in any order of events (docs/adr/0008-queue-registry.md):

1. ``register.lua`` (registry slot) adds the names, refusing the whole call when the new
   ones would pass the cap, and returns each name's generation.
2. ``enqueue.lua`` (queue slot) takes that generation and writes nothing when the
   queue's tombstone names it or a later one: that registration was retired.
3. ``retire.lua`` (queue slot) writes the tombstone (generation g) only when the queue
   holds no job, and from then on step 2 refuses every create made under g.
4. ``unregister.lua`` (registry slot) removes the name only if it still holds g, so a
   late removal never takes away a name registered again since.

A create refused at step 2 completes the retirement itself (step 4), registers again
(step 1, a new generation, capped) and retries. A queue holding a job therefore never
leaves: it was either written before step 3 (then step 3 finds it not empty), or under a
generation step 3 did not retire, which step 4 cannot remove.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from redis.asyncio import Redis

from conveyor.errors import QueueLimitReached
from conveyor.store.keys import Keys
from conveyor.store.scripts import Call, run_pipelined, scripts

# How long a tombstone outlives the retirement it records: far longer than any create
# takes from its registration to its enqueue script (a request's deadline, seconds).
RETIRED_TTL_MS = 3_600_000
RETIRE_BATCH = 500  # queues examined per round trip by `retire_drained`
UNCAPPED = -1
# A generation learned by `register` is reused for this long without asking again, so a
# steady stream of creates into known queues costs no registry round trip. Safe because
# it is far shorter than RETIRED_TTL_MS: a registration retired meanwhile still has its
# tombstone, and the enqueue script refuses it (then the queue is registered again).
KNOWN_SECONDS = 5.0
KNOWN_MAX = 4096  # generations remembered per process at most


class QueueRegistry:
    def __init__(self, redis: Redis, keys: Keys, *, max_queues: int | None = None) -> None:
        """`max_queues` None: no cap (readers and workers; creates pass the setting).
        One registry per producer: it remembers the generations it learned for a few
        seconds (KNOWN_SECONDS)."""
        self.redis = redis
        self.keys = keys
        self.max_queues = max_queues
        self.scripts = scripts()
        self._known: dict[str, tuple[int, float]] = {}  # name -> (generation, learned at)

    def _registry_keys(self) -> list[str]:
        return [self.keys.queues, self.keys.queue_generations]

    async def register(self, queues: Sequence[str], *, capped: bool = True) -> dict[str, int]:
        """Add `queues` (all or none); each one's generation. `QueueLimitReached` when the
        new names would take the registry past `max_queues` (only when `capped`)."""
        names = list(dict.fromkeys(queues))
        now = time.monotonic()
        out = {n: k[0] for n in names if (k := self._known.get(n)) and now - k[1] < KNOWN_SECONDS}
        ask = [n for n in names if n not in out]
        if not ask:
            return out
        cap = self.max_queues if capped and self.max_queues is not None else UNCAPPED
        reply: Any = await self.scripts.register(self.redis, self._registry_keys(), [cap, *ask])
        if int(reply[0]) < 0:
            known: Any = await self.redis.smismember(self.keys.queues, ask)
            new = [n for n, k in zip(ask, known, strict=True) if not int(k)]
            raise QueueLimitReached(cap, new or ask)
        if len(self._known) + len(ask) > KNOWN_MAX:
            self._known.clear()
        for name, gen in zip(ask, reply[1:], strict=True):
            out[name] = int(gen)
            self._known[name] = (int(gen), now)
        return out

    def forget(self, queue: str) -> None:
        """Ask the registry for `queue`'s generation next time (its own was retired)."""
        self._known.pop(queue, None)

    async def unregister(self, queue: str, generation: int) -> bool:
        """Remove `queue` if it still holds `generation`, whose retirement
        (``retire.lua``) found it empty."""
        removed: Any = await self.scripts.unregister(
            self.redis, self._registry_keys(), [queue, generation]
        )
        return bool(int(removed))

    async def retire_drained(self, queues: Sequence[str]) -> list[str]:
        """Remove those of `queues` that hold no job; the names removed.

        Three round trips per `RETIRE_BATCH` queues: their generations, one retire script
        per queue (pipelined), one unregister per empty queue (pipelined).
        """
        removed: list[str] = []
        for start in range(0, len(queues), RETIRE_BATCH):
            removed += await self._retire_batch(list(queues[start : start + RETIRE_BATCH]))
        return removed

    async def _retire_batch(self, names: list[str]) -> list[str]:
        if not names:
            return []
        raw: Any = await self.redis.hmget(self.keys.queue_generations, names)
        gens = [int(g) if g is not None else 0 for g in raw]
        calls = []
        for name, gen in zip(names, gens, strict=True):
            q = self.keys.queue(name)
            calls.append(
                Call(self.scripts.retire, [*q.header(), q.retired, q.paused], [gen, RETIRED_TTL_MS])
            )
        empty = [
            (name, gen)
            for name, gen, ok in zip(
                names, gens, await run_pipelined(self.redis, calls), strict=True
            )
            if not isinstance(ok, Exception) and int(ok) == 1
        ]
        if not empty:
            return []
        keys = self._registry_keys()
        unregister = [Call(self.scripts.unregister, keys, [n, g]) for n, g in empty]
        done = await run_pipelined(self.redis, unregister)
        return [n for (n, _), ok in zip(empty, done, strict=True) if ok == 1]
