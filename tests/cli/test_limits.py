"""`conveyor limits ls|set|rm` (Redis only) and `conveyor enqueue --limit-key`."""

from __future__ import annotations

import json

from click.testing import CliRunner, Result

from conveyor.cli import main
from conveyor.client import SyncClient

Q = "work"


def run(redis_url: str, prefix: str, *args: str, api_url: str | None = None) -> Result:
    env = {
        "CONVEYOR_API_URL": api_url,
        "CONVEYOR_API_TOKEN": None,
        "CONVEYOR_CONFIG": None,
        "CONVEYOR_REDIS_URL": redis_url,
        "CONVEYOR_KEY_PREFIX": prefix,
    }
    return CliRunner().invoke(main, list(args), env=env)


def test_set_list_and_remove_limits(redis_url: str, prefix: str) -> None:
    done = run(redis_url, prefix, "limits", "set", "tenant-7", "--queue", Q, "--max-running", "3")
    assert done.exit_code == 0, done.output
    assert "set the limits of tenant-7" in done.output
    rate = ["--max-per-second", "2.5", "--burst", "4"]
    assert run(redis_url, prefix, "limits", "set", "queue", "--queue", Q, *rate).exit_code == 0
    shown = run(redis_url, prefix, "limits", "ls", "--queue", Q)
    assert shown.exit_code == 0, shown.output
    assert shown.output.split("\n")[0].split() == [
        "KEY", "MAX_RUNNING", "MAX_PER_SECOND", "BURST", "RUNNING", "HELD",
    ]  # fmt: skip
    assert "tenant-7" in shown.output
    as_json = run(redis_url, prefix, "limits", "ls", "--queue", Q, "--json")
    assert json.loads(as_json.output)["limits"] == [
        {"key": "queue", "max_per_second": 2.5, "burst": 4, "running": 0, "held": 0},
        {"key": "tenant-7", "max_running": 3, "running": 0, "held": 0},
    ]
    removed = run(redis_url, prefix, "limits", "rm", "tenant-7", "--queue", Q)
    assert removed.exit_code == 0
    assert "removed" in removed.output
    with SyncClient.from_url(redis_url, key_prefix=prefix) as client:
        assert [s.key for s in client.limits(Q)] == ["queue"]


def test_bad_limits_are_refused_with_nothing_written(redis_url: str, prefix: str) -> None:
    bad = run(redis_url, prefix, "limits", "set", "a:b", "--queue", Q, "--max-running", "1")
    assert bad.exit_code == 2
    assert "key" in bad.output
    none = run(redis_url, prefix, "limits", "set", "queue", "--queue", Q)
    assert none.exit_code == 2
    over_http = run(redis_url, prefix, "limits", "ls", "--queue", Q, api_url="http://127.0.0.1:9")
    assert over_http.exit_code == 2
    with SyncClient.from_url(redis_url, key_prefix=prefix) as client:
        assert client.limits(Q) == []


def test_enqueue_with_a_limit_key(redis_url: str, prefix: str) -> None:
    made = run(redis_url, prefix, "enqueue", "echo", "--queue", Q, "--limit-key", "t-1", "--json")
    assert made.exit_code == 0, made.output
    assert json.loads(made.output)["limit_key"] == "t-1"
