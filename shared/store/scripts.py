"""Loads the Lua transition scripts and runs them by SHA.

Each ``lua/<name>.lua`` file is one transition; ``lua/_lib.lua`` is prepended to each (and
``lua/_claim.lua`` to the two claim scripts).
Scripts are called with EVALSHA; after a Redis restart or failover the script cache is
empty (NOSCRIPT), so the script is loaded and that one call is sent again. In a pipeline
only the calls that failed with NOSCRIPT are sent again: the others already ran.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import NoScriptError

from conveyor.redis_conn import is_cluster
from conveyor.redis_multiplex import MultiplexedRedis

Arg = str | bytes | int | float
# What runs scripts: a redis-py client, or the worker's multiplexed hot-path connection.
ScriptClient = Redis | MultiplexedRedis


@dataclass(frozen=True, slots=True)
class Script:
    name: str
    source: str
    sha: str

    async def __call__(self, r: ScriptClient, keys: Sequence[str], args: Sequence[Arg]) -> Any:
        try:
            return await r.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            await r.script_load(self.source)
            return await r.evalsha(self.sha, len(keys), *keys, *args)


@dataclass(frozen=True, slots=True)
class Call:
    """One script invocation, to be sent in a pipeline with others."""

    script: Script
    keys: Sequence[str]
    args: Sequence[Arg]


async def run_pipelined(
    r: ScriptClient, calls: Sequence[Call], *, first: Sequence[Sequence[Arg]] = ()
) -> list[Any]:
    """Send several script calls in one round trip; results in the same order.

    A call that raised an error other than NOSCRIPT is returned as that exception instance,
    so one failing job batch does not hide the results of the others.

    `first` are plain commands sent ahead of the calls in the same round trip (Redis runs
    a connection's commands in order, so they have run when the scripts run); an error
    of one of them is raised.
    """
    if not calls:
        return []
    first = await _first_alone_in_cluster(r, first)
    if len(calls) == 1 and not first:
        try:
            return [await calls[0].script(r, calls[0].keys, calls[0].args)]
        except NoScriptError:  # pragma: no cover - Script handles it
            raise
    async with r.pipeline(transaction=False) as pipe:
        for command in first:
            pipe.execute_command(*command)
        for c in calls:
            _add_evalsha(pipe, c)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    for reply in replies[: len(first)]:
        if isinstance(reply, Exception):
            raise reply
    results = replies[len(first) :]
    for i, (c, result) in enumerate(zip(calls, results, strict=True)):
        if isinstance(result, NoScriptError):
            try:
                results[i] = await c.script(r, c.keys, c.args)
            except Exception as exc:
                results[i] = exc
    return results


async def _first_alone_in_cluster(
    r: ScriptClient, first: Sequence[Sequence[Arg]]
) -> Sequence[Sequence[Arg]]:
    """Runs `first` on its own in Redis Cluster and returns what is left to pipeline.

    A Cluster pipeline sends to each node at once: `first` (on other nodes than the
    scripts) has run before them only when it is sent, and answered, first: one pipeline
    of its own, whose every reply has come back before the scripts are sent.
    """
    if not first or not is_cluster(r):
        return first
    async with r.pipeline(transaction=False) as pipe:
        for command in first:
            pipe.execute_command(*command)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return ()


def _add_evalsha(pipe: Any, call: Call) -> None:
    # EVALSHA as a plain command: a Cluster pipeline refuses its `evalsha` method but
    # routes the command by its keys (all of one queue, so one slot).
    pipe.execute_command("EVALSHA", call.script.sha, len(call.keys), *call.keys, *call.args)


async def run_replicated(
    r: Redis,
    calls: Sequence[Call],
    *,
    replicas: int,
    timeout_ms: int,
    first: Sequence[Sequence[Arg]] = (),
) -> tuple[list[Any], int]:
    """`run_pipelined`, then ``WAIT replicas timeout_ms`` in the same round trip; returns
    the results and how many replicas acknowledged the writes.

    WAIT counts the replicas that have every write of the connection it is sent on, so it
    goes into the pipeline that carries the scripts (one connection), never as a call of
    its own, which the pool may send on another connection. Calls sent again after
    NOSCRIPT go in a second pipeline with its own WAIT; the lower count is returned.
    Not for Redis Cluster, whose pipeline spreads over several connections.
    """
    if is_cluster(r):
        raise ValueError("WAIT after a script is not supported with Redis Cluster")
    results, acked = await _send_and_wait(r, calls, first, replicas, timeout_ms)
    missing = [i for i, result in enumerate(results) if isinstance(result, NoScriptError)]
    if missing:
        for script in {calls[i].script.name: calls[i].script for i in missing}.values():
            await r.script_load(script.source)
        again, acked_again = await _send_and_wait(
            r, [calls[i] for i in missing], (), replicas, timeout_ms
        )
        for i, result in zip(missing, again, strict=True):
            results[i] = result
        acked = min(acked, acked_again)
    return results, acked


async def _send_and_wait(
    r: Redis,
    calls: Sequence[Call],
    first: Sequence[Sequence[Arg]],
    replicas: int,
    timeout_ms: int,
) -> tuple[list[Any], int]:
    async with r.pipeline(transaction=False) as pipe:
        for command in first:
            pipe.execute_command(*command)
        for c in calls:
            _add_evalsha(pipe, c)
        pipe.execute_command("WAIT", replicas, timeout_ms)
        replies: list[Any] = await pipe.execute(raise_on_error=False)
    for reply in (*replies[: len(first)], replies[-1]):
        if isinstance(reply, Exception):
            raise reply
    return replies[len(first) : -1], int(replies[-1])


def _read(name: str) -> str:
    return resources.files("conveyor.store").joinpath("lua", f"{name}.lua").read_text("utf-8")


# Libraries some scripts take after _lib.lua: the per-entry claim of both claim scripts, and
# the concurrency and rate limits of the scripts that start, end or renew attempts.
_INCLUDES = {
    "claim": ("_limits", "_claim"),
    "read_claim": ("_limits", "_claim"),
    "complete": ("_limits",),
    "fail": ("_limits",),
    "requeue": ("_limits",),
    "cancel": ("_limits",),
    "renew": ("_limits",),
    "limits_sweep": ("_limits",),
    "limits_set": ("_limits",),
    "limits_delete": ("_limits",),
}


def load(name: str) -> Script:
    parts = ["_lib", *_INCLUDES.get(name, ()), name]
    source = "\n".join(_read(part) for part in parts)
    return Script(name, source, hashlib.sha1(source.encode(), usedforsecurity=False).hexdigest())


class Scripts:
    """Every transition script, loaded once per process."""

    def __init__(self) -> None:
        self.enqueue = load("enqueue")
        self.claim = load("claim")
        self.read_claim = load("read_claim")
        self.complete = load("complete")
        self.fail = load("fail")
        self.requeue = load("requeue")
        self.cancel = load("cancel")
        self.replay = load("replay")
        self.promote = load("promote")
        self.renew = load("renew")
        self.expire = load("expire")
        self.purge = load("purge")
        self.release_consumer = load("release_consumer")
        self.register = load("register")
        self.unregister = load("unregister")
        self.retire = load("retire")
        self.queue_stats = load("queue_stats")
        self.limits_sweep = load("limits_sweep")
        self.limits_set = load("limits_set")
        self.limits_delete = load("limits_delete")
        self.set_concurrency = load("set_concurrency")
        self.schedule_put = load("schedule_put")
        self.schedule_fired = load("schedule_fired")
        self.schedule_delete = load("schedule_delete")

    def all(self) -> list[Script]:
        return [v for v in vars(self).values() if isinstance(v, Script)]


_scripts: Scripts | None = None


def scripts() -> Scripts:
    """The process-wide script set (immutable once loaded)."""
    global _scripts
    if _scripts is None:
        _scripts = Scripts()
    return _scripts
