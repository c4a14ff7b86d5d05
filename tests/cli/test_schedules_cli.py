"""`conveyor schedules` through click's runner, against Redis directly."""

from __future__ import annotations

import json
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conveyor.cli import main
from conveyor.client import SyncClient


class Schedules:
    def __init__(self, redis_url: str, prefix: str) -> None:
        self.env: dict[str, str | None] = {
            "CONVEYOR_API_URL": None,
            "CONVEYOR_API_TOKEN": None,
            "CONVEYOR_CONFIG": None,
            "CONVEYOR_REDIS_URL": redis_url,
            "CONVEYOR_KEY_PREFIX": prefix,
        }
        self.runner = CliRunner()

    def __call__(self, *args: str) -> Result:
        return self.runner.invoke(main, ["schedules", *args], env=self.env)

    def json(self, *args: str) -> Any:
        result = self(*args, "--json")
        assert result.exit_code == 0, (result.output, result.exception)
        return json.loads(result.stdout)


@pytest.fixture
def schedules(redis_url: str, prefix: str) -> Schedules:
    return Schedules(redis_url, prefix)


def test_put_show_list_delete(schedules: Schedules, redis_url: str, prefix: str) -> None:
    stored = schedules.json(
        "put",
        "nightly",
        "--type",
        "report.daily",
        "--cron",
        "0 2 * * *",
        "--timezone",
        "Europe/Paris",
        "--payload",
        '{"format": "pdf"}',
        "--overlap",
        "skip",
        "--max-attempts",
        "2",
    )
    assert (stored["cron"], stored["timezone"], stored["overlap"]) == (
        "0 2 * * *",
        "Europe/Paris",
        "skip",
    )
    assert stored["payload"] == {"format": "pdf"}
    assert schedules.json("show", "nightly") == stored
    listed = schedules("list")
    assert listed.exit_code == 0
    assert "nightly" in listed.stdout
    assert "0 2 * * * (Europe/Paris)" in listed.stdout
    assert schedules.json("list")["total"] == 1
    with SyncClient.from_url(redis_url, key_prefix=prefix) as client:
        assert [s.spec.name for s in client.schedules()] == ["nightly"]
    assert schedules("delete", "nightly").exit_code == 0
    assert schedules.json("list") == {"items": [], "total": 0}
    assert "no schedules" in schedules().stdout  # no subcommand: the list


def test_bad_input_and_unknown_names_fail_cleanly(schedules: Schedules) -> None:
    bad = schedules("put", "n", "--type", "t", "--cron", "99 * * * *")
    assert bad.exit_code == 2
    assert "invalid cron" in bad.stderr
    both = schedules("put", "n", "--type", "t", "--cron", "* * * * *", "--every", "5")
    assert both.exit_code == 2
    assert "invalid cron" in both.stderr
    missing = schedules("show", "nope")
    assert missing.exit_code == 1
    assert "no schedule is named nope" in missing.stderr
    assert "Traceback" not in missing.output
    over_http = schedules("list", "--api-url", "http://127.0.0.1:1")
    assert over_http.exit_code == 2
    assert "Redis directly" in over_http.stderr
