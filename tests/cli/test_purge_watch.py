"""`conveyor purge` (Redis only, asks first) and `conveyor queues --watch`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result
from redis.asyncio import Redis

from conveyor.cli import main
from conveyor.client import SyncClient
from conveyor.commands import monitoring
from conveyor.store.keys import Keys
from tests.cli.conftest import Api
from tests.helpers import seed
from tests.helpers.invariants import assert_invariants

Q = "work"


def run(
    redis_url: str, prefix: str, *args: str, input: str | None = None, api_url: str | None = None
) -> Result:
    env = {
        "CONVEYOR_API_URL": api_url,
        "CONVEYOR_API_TOKEN": None,
        "CONVEYOR_CONFIG": None,
        "CONVEYOR_REDIS_URL": redis_url,
        "CONVEYOR_KEY_PREFIX": prefix,
    }
    return CliRunner().invoke(main, list(args), env=env, input=input)


@pytest.fixture
def client(redis_url: str, prefix: str) -> Iterator[SyncClient]:
    with SyncClient.from_url(redis_url, key_prefix=prefix, result_ttl_seconds=600) as c:
        yield c


def seed_jobs(redis_url: str, keys: Keys, *, failed: int, canceled: int, waiting: int) -> None:
    async def go() -> None:
        r = Redis.from_url(redis_url)
        try:
            producer = seed.producer_store(r, keys)
            consumer = seed.consumer_store(r, keys, "c1")
            await seed.enqueue_many(producer, failed, Q)
            for claimed in await seed.claim_all(consumer, Q):
                await seed.fail(consumer, claimed, retryable=False)
            for job in await seed.enqueue_many(producer, canceled, Q):
                await producer.cancel(job.id)
            await seed.enqueue_many(producer, waiting, Q)
        finally:
            await r.aclose()

    asyncio.run(go())


def check_invariants(redis_url: str, keys: Keys) -> None:
    async def go() -> None:
        r = Redis.from_url(redis_url)
        try:
            await assert_invariants(r, keys, [Q])
        finally:
            await r.aclose()

    asyncio.run(go())


def counts(client: SyncClient) -> tuple[int, int, int]:
    stats = client.queue(Q)
    assert stats is not None
    return stats.failed, stats.canceled, stats.waiting


# -- purge ----------------------------------------------------------------------------------


def test_purge_asks_first_showing_how_many(
    redis_url: str, prefix: str, keys: Keys, client: SyncClient
) -> None:
    seed_jobs(redis_url, keys, failed=3, canceled=2, waiting=1)

    declined = run(redis_url, prefix, "purge", "--queue", Q, "--status", "failed", input="n\n")
    assert declined.exit_code == 1
    assert "Delete 3 failed jobs of queue work?" in declined.stderr
    assert counts(client) == (3, 2, 1)

    accepted = run(redis_url, prefix, "purge", "--queue", Q, "--status", "failed", input="y\n")
    assert accepted.exit_code == 0, (accepted.output, accepted.exception)
    assert accepted.stdout == "purged 3 failed jobs of queue work\n"
    assert counts(client) == (0, 2, 1)
    check_invariants(redis_url, keys)


def test_purge_with_yes_does_not_ask(
    redis_url: str, prefix: str, keys: Keys, client: SyncClient
) -> None:
    seed_jobs(redis_url, keys, failed=1, canceled=2, waiting=1)
    result = run(
        redis_url, prefix, "purge", "--queue", Q, "--status", "canceled", "--yes", "--json"
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stderr == ""
    assert json.loads(result.stdout) == {"queue": Q, "status": "canceled", "purged": 2}
    assert counts(client) == (1, 0, 1)

    again = run(redis_url, prefix, "purge", "--queue", Q, "--status", "canceled")
    assert again.exit_code == 0  # nothing to delete: nothing asked
    assert again.stdout == "purged 0 canceled jobs of queue work\n"
    check_invariants(redis_url, keys)


def test_purge_refuses_the_api(redis_url: str, prefix: str, keys: Keys) -> None:
    seed_jobs(redis_url, keys, failed=1, canceled=0, waiting=0)
    result = run(
        redis_url,
        prefix,
        "purge",
        "--queue",
        Q,
        "--status",
        "failed",
        "--yes",
        api_url="http://127.0.0.1:9",
    )
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: purge talks to Redis directly")
    assert "no purge route" in result.stderr


@pytest.mark.parametrize(
    ("args", "exit_code", "fragment"),
    [
        (("--queue", Q, "--status", "pending"), 2, "'pending' is not one of"),
        (("--queue", Q, "--status", "running"), 2, "'running' is not one of"),
        (("--status", "failed"), 2, "Missing option '--queue'"),
        (("--queue", "bad name!", "--status", "failed"), 2, "invalid queue"),
        (("--queue", "unknown", "--status", "failed", "--yes"), 1, "no queue is named unknown"),
    ],
)
def test_purge_refusals(
    redis_url: str, prefix: str, keys: Keys, args: tuple[str, ...], exit_code: int, fragment: str
) -> None:
    seed_jobs(redis_url, keys, failed=1, canceled=0, waiting=0)
    result = run(redis_url, prefix, "purge", *args)
    assert result.exit_code == exit_code, (result.output, result.exception)
    assert "Traceback" not in result.output
    assert fragment in result.stderr
    check_invariants(redis_url, keys)


# -- queues --watch -------------------------------------------------------------------------


def test_watch_redraws_until_its_iterations(
    redis_url: str, prefix: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_jobs(redis_url, keys, failed=0, canceled=0, waiting=2)
    pauses: list[float] = []
    monkeypatch.setattr(monitoring, "sleep", pauses.append)

    result = run(redis_url, prefix, "queues", "--watch", "--interval", "0.5", "--iterations", "3")

    assert result.exit_code == 0, (result.output, result.exception)
    assert pauses == [0.5, 0.5]
    headers = [line for line in result.stdout.splitlines() if line.startswith("NAME")]
    assert len(headers) == 3
    assert result.stdout.count("every 0.5s, Ctrl-C to stop") == 3
    rows = [line.split() for line in result.stdout.splitlines() if line.startswith(Q)]
    assert [row[:2] for row in rows] == [[Q, "2"]] * 3


def test_watch_stops_cleanly_on_ctrl_c(
    redis_url: str, prefix: str, keys: Keys, monkeypatch: pytest.MonkeyPatch
) -> None:
    seed_jobs(redis_url, keys, failed=0, canceled=0, waiting=1)

    def interrupted(_: float) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(monitoring, "sleep", interrupted)
    result = run(redis_url, prefix, "queues", "--watch", "--json")
    assert result.exit_code == 0, (result.output, result.exception)
    [item] = json.loads(result.stdout)["items"]
    assert (item["name"], item["waiting"]) == (Q, 1)


def test_watch_over_the_api(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(monitoring, "sleep", lambda _: None)
    result = run(
        "redis://127.0.0.1:1/0",  # must not be used
        api.prefix,
        "queues",
        "--watch",
        "--iterations",
        "2",
        api_url=api.url,
    )
    assert result.exit_code == 0, (result.output, result.exception)
    assert result.stdout.count("every 2s, Ctrl-C to stop") == 2


def test_interval_has_a_floor(redis_url: str, prefix: str) -> None:
    result = run(redis_url, prefix, "queues", "--watch", "--interval", "0")
    assert result.exit_code == 2
    assert "--interval" in result.stderr
