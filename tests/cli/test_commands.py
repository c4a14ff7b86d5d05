"""The job commands through click's runner, against Redis directly and over HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner, Result
from redis.asyncio import Redis

from conveyor.cli import main
from conveyor.ids import new_job_id
from conveyor.store.keys import Keys
from conveyor.store.workers import WorkerRegistry
from tests.cli.conftest import TOKEN, Api
from tests.helpers.redis_server import free_port


class Conveyor:
    """Runs `conveyor ...` in one mode: Redis-direct, or over HTTP with --api-url."""

    def __init__(self, api: Api, mode: str) -> None:
        self.api = api
        self.mode = mode
        self.runner = CliRunner()

    def env(self) -> dict[str, str | None]:
        env: dict[str, str | None] = {
            "CONVEYOR_API_URL": None,
            "CONVEYOR_API_TOKEN": None,
            "CONVEYOR_CONFIG": None,
        }
        if self.mode == "http":
            env["CONVEYOR_API_URL"] = self.api.url
            env["CONVEYOR_REDIS_URL"] = "redis://127.0.0.1:1/0"  # must not be used
        else:
            env["CONVEYOR_REDIS_URL"] = self.api.redis_url
            env["CONVEYOR_KEY_PREFIX"] = self.api.prefix
        return env

    def __call__(self, *args: str, env: dict[str, str | None] | None = None) -> Result:
        return self.runner.invoke(main, list(args), env={**self.env(), **(env or {})})

    def ok(self, *args: str) -> Result:
        result = self(*args)
        assert result.exit_code == 0, (result.output, result.stderr, result.exception)
        return result

    def json(self, *args: str) -> Any:
        return json.loads(self.ok(*args, "--json").stdout)


@pytest.fixture(params=["redis", "http"])
def conveyor(request: pytest.FixtureRequest, api: Api) -> Conveyor:
    return Conveyor(api, request.param)


def assert_clean_failure(result: Result, exit_code: int, *fragments: str) -> None:
    assert result.exit_code == exit_code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit)  # no traceback: click's own exit
    assert "Traceback" not in result.output
    message = result.stderr
    assert message.startswith("Error:") or "Usage:" in message, message
    for fragment in fragments:
        assert fragment in message, message


def test_enqueue_get_cancel_replay(conveyor: Conveyor, queue: str) -> None:
    job = conveyor.json(
        "enqueue",
        "echo",
        "--payload",
        '{"to": "ann", "n": [1, 2]}',
        "--queue",
        queue,
        "--max-attempts",
        "4",
        "--timeout",
        "2.5",
    )
    assert job["status"] == "pending"
    assert (job["queue"], job["max_attempts"], job["timeout_seconds"]) == (queue, 4, 2.5)
    assert job["payload"] == {"to": "ann", "n": [1, 2]}

    assert conveyor.json("get", job["id"]) == job
    details = conveyor.ok("get", job["id"]).stdout
    assert job["id"] in details
    assert '{"to": "ann", "n": [1, 2]}' in details

    canceled = conveyor.ok("cancel", job["id"]).stdout
    assert job["id"] in canceled
    assert "canceled" in canceled
    again = conveyor("cancel", job["id"])
    assert_clean_failure(again, 1, "cannot cancel a job that is canceled")

    replayed = conveyor.json("replay", job["id"])
    assert (replayed["id"], replayed["status"], replayed["attempts"]) == (job["id"], "pending", 0)
    assert_clean_failure(conveyor("replay", job["id"]), 1, "cannot replay a job that is pending")
    # `retry`, the command's older name, is the same command.
    assert_clean_failure(conveyor("retry", job["id"]), 1, "cannot replay a job that is pending")
    conveyor.ok("cancel", job["id"])
    assert conveyor.json("retry", job["id"])["status"] == "pending"


def test_replay_is_listed_and_retry_is_its_hidden_alias() -> None:
    listed = [
        line.split()[0]
        for line in CliRunner().invoke(main, ["--help"]).stdout.split("\n")
        if line.startswith("  ") and line.split()
    ]
    assert "replay" in listed
    assert "retry" not in listed
    alias = CliRunner().invoke(main, ["retry", "--help"])
    assert alias.exit_code == 0
    assert "Run the failed or canceled job ID again" in alias.stdout


def test_enqueue_table_and_delay(conveyor: Conveyor, queue: str) -> None:
    out = conveyor.ok("enqueue", "later", "--queue", queue, "--delay", "60").stdout
    header, row = out.splitlines()
    assert header.split()[:5] == ["ID", "TYPE", "QUEUE", "STATUS", "ATTEMPTS"]
    assert row.split()[1:4] == ["later", queue, "scheduled"]


def test_idempotency_key(conveyor: Conveyor, queue: str) -> None:
    first = conveyor.json("enqueue", "echo", "--queue", queue, "--idempotency-key", "k1")
    again = conveyor.json("enqueue", "echo", "--queue", queue, "--idempotency-key", "k1")
    assert again["id"] == first["id"]
    conflict = conveyor(
        "enqueue", "echo", "--queue", queue, "--idempotency-key", "k1", "--payload", "2"
    )
    assert_clean_failure(conflict, 1, "idempotency key 'k1'")


def test_ls_filters_and_pages(conveyor: Conveyor, queue: str) -> None:
    ids = [conveyor.json("enqueue", "echo", "--queue", queue)["id"] for _ in range(3)]
    conveyor.ok("cancel", ids[0])
    page = conveyor.json("ls", "--queue", queue, "--limit", "2")
    assert [j["id"] for j in page["items"]] == [ids[2], ids[1]]
    assert page["next_cursor"]
    rest = conveyor.json("ls", "--queue", queue, "--limit", "2", "--cursor", page["next_cursor"])
    assert [j["id"] for j in rest["items"]] == [ids[0]]
    canceled = conveyor.json("ls", "--queue", queue, "--status", "canceled,failed")
    assert [j["id"] for j in canceled["items"]] == [ids[0]]
    both = conveyor.json("ls", "--queue", queue, "--status", "canceled", "--status", "pending")
    assert len(both["items"]) == 3

    table = conveyor.ok("ls", "--queue", queue, "--limit", "2").stdout
    assert ids[2] in table
    assert ids[1] in table
    assert f"--cursor {page['next_cursor']}" in table
    assert conveyor.ok("ls", "--queue", queue, "--type", "other").stdout.strip() == "no jobs"

    # The window's edges are those of the job ids' times (tests/store/test_listing.py).
    hour_ago = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    recent = conveyor.json("ls", "--queue", queue, "--created-after", hour_ago)
    assert [j["id"] for j in recent["items"]] == ids[::-1]
    old = conveyor.json("ls", "--queue", queue, "--created-before", "2000-01-01T00:00:00Z")
    assert old["items"] == []
    future = conveyor.json("ls", "--queue", queue, "--created-after", "2100-01-01T00:00:00+01:00")
    assert future["items"] == []
    naive = conveyor("ls", "--created-after", "2026-01-01T00:00:00")
    assert_clean_failure(naive, 2, "--created-after", "offset")
    assert_clean_failure(conveyor("ls", "--created-before", "yesterday"), 2, "RFC 3339")


def test_queues(conveyor: Conveyor, queue: str) -> None:
    conveyor.ok("enqueue", "echo", "--queue", queue)
    conveyor.ok("enqueue", "echo", "--queue", queue, "--delay", "60")
    items = conveyor.json("queues")["items"]
    [mine] = [q for q in items if q["name"] == queue]
    assert (mine["waiting"], mine["scheduled"], mine["running"]) == (1, 1, 0)
    assert [q["name"] for q in items] == sorted(q["name"] for q in items)
    table = conveyor.ok("queues").stdout
    assert table.splitlines()[0].split()[:3] == ["NAME", "WAITING", "PENDING"]
    assert queue in table


def test_workers(conveyor: Conveyor) -> None:
    worker_id = f"w-{conveyor.mode}-{new_job_id()}"
    info: dict[str, str | int | float] = {
        "host": "box",
        "pid": 42,
        "queues": "a,b",
        "concurrency": 3,
        "in_flight": 1,
        "processed": 7,
        "failed": 2,
        "started_at": 1_900_000_000_000,
    }

    async def beat() -> None:
        redis = Redis.from_url(conveyor.api.redis_url)
        try:
            await WorkerRegistry(redis, Keys(conveyor.api.prefix)).beat(worker_id, info, 30)
        finally:
            await redis.aclose()

    asyncio.run(beat())
    items = conveyor.json("workers")["items"]
    [mine] = [w for w in items if w["id"] == worker_id]
    assert mine["queues"] == ["a", "b"]
    assert (mine["pid"], mine["in_flight"], mine["processed"]) == (42, 1, 7)
    assert mine["started_at"] == "2030-03-17T17:46:40.000Z"
    assert worker_id in conveyor.ok("workers").stdout


def test_both_modes_print_the_same_json(api: Api, queue: str) -> None:
    redis, http = Conveyor(api, "redis"), Conveyor(api, "http")
    job = redis.json("enqueue", "echo", "--queue", queue, "--payload", "[1, 2.5, null]")
    assert http.json("get", job["id"]) == redis.json("get", job["id"])
    assert http.json("ls", "--queue", queue) == redis.json("ls", "--queue", queue)

    def mine(items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        # Everything but the age of the oldest waiting entry, which grows meanwhile.
        return [
            {k: v for k, v in q.items() if k != "oldest_waiting_age_seconds"}
            for q in items
            if q["name"] == queue
        ]

    assert mine(http.json("queues")["items"]) == mine(redis.json("queues")["items"])


def test_not_found_and_invalid_input(conveyor: Conveyor) -> None:
    missing = new_job_id()
    for command in ("get", "cancel", "replay", "retry"):
        assert_clean_failure(conveyor(command, missing), 1, f"job {missing} not found")
    assert_clean_failure(conveyor("get", "not-an-id"), 2, "invalid id")
    bad_payload = conveyor("enqueue", "echo", "--payload", "{not json")
    assert_clean_failure(bad_payload, 2, "--payload", "not valid JSON")
    assert_clean_failure(conveyor("enqueue", "bad{type}"), 2, "invalid type")
    assert_clean_failure(conveyor("ls", "--status", "sleeping"), 2, "--status", "'sleeping'")
    assert_clean_failure(conveyor("ls", "--cursor", "nope"), 2, "cursor")
    assert_clean_failure(conveyor("ls", "--limit", "0"), 2, "--limit")
    assert_clean_failure(conveyor("enqueue", "echo", "--max-attempts", "0"), 2)


def test_payload_too_large_is_invalid_input(api: Api) -> None:
    big = json.dumps("x" * 2000)
    http = Conveyor(api, "http")
    assert_clean_failure(http("enqueue", "echo", "--payload", big), 2, "invalid payload")
    redis = Conveyor(api, "redis")
    result = redis("enqueue", "echo", "--payload", big, env={"CONVEYOR_MAX_PAYLOAD_BYTES": "1024"})
    assert_clean_failure(result, 2, "invalid payload")


def test_unreachable_store_or_api(api: Api) -> None:
    closed = f"127.0.0.1:{free_port()}"
    redis = Conveyor(api, "redis")
    result = redis("ls", env={"CONVEYOR_REDIS_URL": f"redis://:hunter2@{closed}/0"})
    assert_clean_failure(result, 1, "cannot reach Redis", closed)
    assert "hunter2" not in result.output
    http = Conveyor(api, "http")
    result = http("ls", "--api-url", f"http://{closed}", env={"CONVEYOR_API_TOKEN": "sekrit-token"})
    assert_clean_failure(result, 1, "unavailable", closed)
    assert "sekrit-token" not in result.output
    assert_clean_failure(http("ls", "--api-url", "ftp://x"), 2, "--api-url")


def test_api_token(secured_api: Api, queue: str) -> None:
    http = Conveyor(secured_api, "http")
    created = http("enqueue", "echo", "--queue", queue, "--json", env={"CONVEYOR_API_TOKEN": TOKEN})
    assert created.exit_code == 0, created.output
    job = json.loads(created.stdout)
    via_env = http("get", job["id"], "--json", env={"CONVEYOR_API_TOKEN": TOKEN})
    assert via_env.exit_code == 0, via_env.output
    assert json.loads(via_env.stdout)["id"] == job["id"]
    refused = http("get", job["id"], env={"CONVEYOR_API_TOKEN": "wrong-token-0123456789"})
    assert_clean_failure(refused, 1, "refused", "401")
    assert "wrong-token" not in refused.output
    assert_clean_failure(http("get", job["id"]), 1, "401")


@pytest.mark.parametrize(
    "url",
    [
        "redis://:hunter2@127.0.0.1:1/0",
        "redis://user:hunter2@127.0.0.1:1/0",
        "redis://127.0.0.1:1/0?password=hunter2",
        "redis://127.0.0.1:1/0?%70assword=hunter2",
        "redis://127.0.0.1:1/0?pass%77ord=hunter2",
        "redis+sentinel://127.0.0.1:1/mymaster?SENTINEL_%70assword=hunter2",
    ],
)
def test_a_redis_password_on_the_command_line_is_refused(api: Api, url: str) -> None:
    """`ps` shows every argument to every user: a password there is refused, unechoed."""
    for command in (["ls"], ["config"], ["enqueue", "echo"]):
        result = Conveyor(api, "redis")(*command, "--redis-url", url)
        assert_clean_failure(result, 2, "--redis-url", "CONVEYOR_REDIS_URL", "config file")
        assert "hunter2" not in result.output


def test_a_redis_url_without_password_on_the_command_line_is_accepted(api: Api) -> None:
    result = Conveyor(api, "redis")("config", "--redis-url", "redis://user@127.0.0.1:1/0?db=1")
    assert result.exit_code == 0, result.output
    assert "redis://user@127.0.0.1:1/0?db=1" in result.stdout


def test_an_api_token_on_the_command_line_is_refused(api: Api) -> None:
    http = Conveyor(api, "http")
    result = http("ls", "--api-token", "sekrit-token-0123456789")
    assert_clean_failure(result, 2, "--api-token", "CONVEYOR_API_TOKEN")
    assert "sekrit-token" not in result.output


def test_unique_key(conveyor: Conveyor, queue: str) -> None:
    first = conveyor.json("enqueue", "echo", "--queue", queue, "--unique-key", "u1")
    again = conveyor.json(
        "enqueue", "echo", "--queue", queue, "--unique-key", "u1", "--unique-for", "60"
    )
    assert again["id"] == first["id"]
    other = conveyor.json("enqueue", "echo", "--queue", queue, "--unique-key", "u2")
    assert other["id"] != first["id"]


def test_resize(conveyor: Conveyor, queue: str) -> None:
    worker_id = f"w-{conveyor.mode}-{new_job_id()}"
    keys = Keys(conveyor.api.prefix)

    async def beat_and_read(read_queue: str) -> tuple[Any, Any]:
        redis = Redis.from_url(conveyor.api.redis_url)
        try:
            await WorkerRegistry(redis, keys).beat(worker_id, {"concurrency": 2}, 30)
            own = await redis.hget(keys.worker(worker_id), "desired_concurrency")
            per_queue = await redis.hget(keys.concurrency, read_queue)
            return own, per_queue
        finally:
            await redis.aclose()

    asyncio.run(beat_and_read(queue))
    assert conveyor.json("resize", worker_id, "7") == {"worker": worker_id, "concurrency": 7}
    conveyor.json("enqueue", "echo", "--queue", queue)  # the queue is known from here on
    assert "concurrency 3" in conveyor.ok("resize", "--queue", queue, "3").stdout
    assert asyncio.run(beat_and_read(queue)) == (b"7", b"3")
    conveyor.ok("resize", worker_id, "default")
    assert asyncio.run(beat_and_read(queue)) == (None, b"3")
    assert_clean_failure(conveyor("resize", "gone-1-000000", "4"), 1, "no live worker")
    assert_clean_failure(conveyor("resize", worker_id, "lots"), 2, "positive integer")
