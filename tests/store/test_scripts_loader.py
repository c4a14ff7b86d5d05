"""shared/store/scripts.py: scripts load by SHA, survive an empty script cache (NOSCRIPT),
and a pipeline re-sends only the calls that failed with NOSCRIPT.

These tests flush the script cache, so they use a Redis server of their own instead of the
one the other tests share."""

from __future__ import annotations

import hashlib
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.exceptions import ResponseError

from conveyor.states import Status
from conveyor.store.consumer import Completion
from conveyor.store.keys import HEADER_SIZE, LATE_STATUS_ORDER, STATUS_ORDER, Keys
from conveyor.store.scripts import Call, Script, load, run_pipelined, scripts
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants
from tests.helpers.redis_server import RedisServer

LUA_DIR = Path(__file__).resolve().parents[2] / "shared" / "store" / "lua"


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis-scripts"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
async def rr(own_server: RedisServer) -> AsyncIterator[Redis]:
    client = Redis(port=own_server.port, socket_timeout=5, socket_connect_timeout=5)
    yield client
    await client.aclose()


def counter_script(name: str, step: int) -> Script:
    source = f"return redis.call('INCRBY', KEYS[1], {step})"
    return Script(name, source, hashlib.sha1(source.encode()).hexdigest())


# -- static checks --------------------------------------------------------------------------


def test_every_script_is_the_library_plus_its_file_with_a_matching_sha() -> None:
    library = (LUA_DIR / "_lib.lua").read_text()
    claim_library = (LUA_DIR / "_claim.lua").read_text()
    limits_library = (LUA_DIR / "_limits.lua").read_text()
    # The scripts that start, end or renew attempts, and the limits scripts (ADR 0017).
    with_limits = {"complete", "fail", "requeue", "cancel", "renew"}
    with_limits |= {"limits_set", "limits_delete", "limits_sweep"}
    names = sorted(p.stem for p in LUA_DIR.glob("*.lua") if not p.stem.startswith("_"))
    loaded = {s.name: s for s in scripts().all()}
    assert sorted(loaded) == names
    for name in names:
        s = loaded[name]
        includes = [limits_library] if name in with_limits else []
        if name in ("claim", "read_claim"):
            includes = [limits_library, claim_library]
        own = (LUA_DIR / f"{name}.lua").read_text()
        assert s.source == "\n".join([library, *includes, own])
        assert s.sha == hashlib.sha1(s.source.encode()).hexdigest()
        assert load(name) == s


def test_the_lua_library_indexes_keys_like_queue_keys_header() -> None:
    library = (LUA_DIR / "_lib.lua").read_text()
    table = re.search(r"local INDEX = \{(.*?)\}", library, re.S)
    assert table is not None
    index = {k: int(v) for k, v in re.findall(r"(\w+) = (\d+)", table.group(1))}
    expiries = 4 + len(STATUS_ORDER)
    late = {s.value: expiries + 1 + i for i, s in enumerate(LATE_STATUS_ORDER)}
    assert index == {s.value: 4 + i for i, s in enumerate(STATUS_ORDER)} | late
    consts = re.search(r"local K_STREAM, K_DELAYED, K_ALL, K_EXPIRIES, FIRST_JOB = (.*)", library)
    assert consts is not None
    assert [int(x) for x in consts.group(1).split(",")] == [1, 2, 3, expiries, HEADER_SIZE + 1]
    size = re.search(r"local QUEUE_KEYS = (\d+)", library)
    assert size is not None
    assert int(size.group(1)) == HEADER_SIZE
    header = Keys("p").queue("q").header()
    q = Keys("p").queue("q")
    assert header[:3] == [q.stream, q.delayed, q.all_index]
    assert header[3 : expiries - 1] == [q.index(s) for s in STATUS_ORDER]
    assert header[expiries - 1] == q.expiries
    assert header[expiries:] == [q.index(s) for s in LATE_STATUS_ORDER]
    assert len(header) == HEADER_SIZE == 12
    assert set(STATUS_ORDER) | set(LATE_STATUS_ORDER) == set(Status)


# -- NOSCRIPT recovery ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_call_after_script_flush_loads_the_script_and_succeeds(
    rr: Redis, keys: Keys
) -> None:
    producer = seed.producer_store(rr, keys)
    await rr.script_flush()
    job = await seed.enqueue(producer, "q")  # one queue: a single script call
    assert await seed.status_of(rr, keys, "q", job.id) is Status.PENDING
    assert await rr.script_exists(scripts().enqueue.sha) == [True]
    await assert_invariants(rr, keys, ["q"])


@pytest.mark.anyio
async def test_a_pipelined_call_after_script_flush_succeeds(rr: Redis, keys: Keys) -> None:
    producer = seed.producer_store(rr, keys)
    await seed.enqueue(producer, "a")
    await rr.script_flush()
    # Two queues: two script calls in one pipeline, both answered NOSCRIPT.
    jobs = await producer.enqueue([seed.spec("a"), seed.spec("b"), seed.spec("a")])
    assert [j.status for j in jobs] == [Status.PENDING] * 3
    assert await rr.xlen(keys.queue("a").stream) == 3
    assert await rr.xlen(keys.queue("b").stream) == 1
    await assert_invariants(rr, keys, ["a", "b"])

    consumer = seed.consumer_store(rr, keys)
    await rr.script_flush()
    claimed = await seed.claim_all(consumer, "a") + await seed.claim_all(consumer, "b")
    assert len(claimed) == 4
    await rr.script_flush()
    outcome = await consumer.finish(
        completions=[Completion(c, b"\xc0") for c in claimed],
        schedule_channel=keys.schedule_channel,
    )
    assert set(outcome.values()) == {"completed"}
    await assert_invariants(rr, keys, ["a", "b"])


@pytest.mark.anyio
async def test_only_the_calls_that_failed_noscript_are_sent_again(rr: Redis, keys: Keys) -> None:
    loaded = counter_script("loaded", 1)
    missing = counter_script("missing", 10)
    await rr.script_flush()
    await rr.script_load(loaded.source)
    k1, k2, k3 = (f"{keys.prefix}:count:{i}" for i in range(3))

    results = await run_pipelined(
        rr,
        [Call(loaded, [k1], []), Call(missing, [k2], []), Call(loaded, [k3], [])],
    )

    assert results == [1, 10, 1]
    assert [await rr.get(k) for k in (k1, k2, k3)] == [b"1", b"10", b"1"]  # each ran once
    assert await rr.script_exists(loaded.sha, missing.sha) == [True, True]


@pytest.mark.anyio
async def test_a_call_failing_otherwise_is_returned_as_its_error(rr: Redis, keys: Keys) -> None:
    ok = counter_script("ok", 1)
    wrong = f"{keys.prefix}:a-string"
    await rr.set(wrong, "x")
    k1 = f"{keys.prefix}:count"

    results = await run_pipelined(rr, [Call(ok, [wrong], []), Call(ok, [k1], [])])

    assert isinstance(results[0], ResponseError)
    assert results[1] == 1
    assert await rr.get(k1) == b"1"


@pytest.mark.anyio
async def test_no_calls_send_nothing(rr: Redis) -> None:
    assert await run_pipelined(rr, []) == []
