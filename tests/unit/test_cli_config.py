"""`conveyor config`, the shared settings flags, and the plugged-in commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner, Result

from conveyor import cli
from conveyor.cli import main, settings_from_cli, settings_options
from conveyor.config import SETTINGS_SPECS

SECRET = "hunter2-Secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings from the machine running the tests must not leak into them."""
    for name in list(os.environ):
        if name.startswith("CONVEYOR_"):
            monkeypatch.delenv(name)


def run(args: list[str], env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, args, env=env, catch_exceptions=False)


# --- conveyor config -----------------------------------------------------------------------


def test_config_json_prints_every_setting_with_precedence(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.toml"
    path.write_text('concurrency = 3\nqueues = ["high", "low"]\nkey_prefix = "file"\n')
    result = run(
        ["config", "--json", "--config", str(path), "--key-prefix", "flag"],
        env={"CONVEYOR_CONCURRENCY": "4", "CONVEYOR_KEY_PREFIX": "env"},
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert list(shown) == [spec.name for spec in SETTINGS_SPECS]
    assert shown["concurrency"] == 4  # env over file
    assert shown["queues"] == ["high", "low"]  # file over default
    assert shown["key_prefix"] == "flag"  # flag over env
    assert shown["max_attempts"] == 3  # default
    assert result.stderr == ""


def test_config_reads_conveyor_config(tmp_path: Path) -> None:
    path = tmp_path / "conveyor.toml"
    path.write_text("max_attempts = 9\n")
    result = run(["config", "--json"], env={"CONVEYOR_CONFIG": str(path)})
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["max_attempts"] == 9


def test_config_text_shows_values_and_sources() -> None:
    result = run(["config", "--log-level", "debug"], env={"CONVEYOR_CONCURRENCY": "4"})
    assert result.exit_code == 0, result.output
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    assert set(lines) == {spec.name for spec in SETTINGS_SPECS}
    assert lines["concurrency"].split() == [
        "concurrency",
        "=",
        "4",
        "(env",
        "CONVEYOR_CONCURRENCY)",
    ]
    assert lines["log_level"].split() == ["log_level", "=", '"DEBUG"', "(flag", "--log-level)"]
    assert lines["queues"].split() == ["queues", "=", '["default"]', "(default)"]
    # aligned: every "=" in the same column
    assert len({line.index("=") for line in lines.values()}) == 1


@pytest.mark.parametrize("as_json", [True, False])
def test_config_never_prints_the_password(as_json: bool) -> None:
    url = f"redis://app:{SECRET}@cache.internal:6379/0"
    result = run(["config", *(["--json"] if as_json else [])], env={"CONVEYOR_REDIS_URL": url})
    assert result.exit_code == 0, result.output
    assert SECRET not in result.output
    assert "redis://app:***@cache.internal:6379/0" in result.stdout


@pytest.mark.parametrize(
    ("query", "masked"),
    [
        (f"%70assword={SECRET}", "%70assword=***"),
        (f"pass%77ord={SECRET}&db=1", "pass%77ord=***&db=1"),
        (f"db=1&SENTINEL_%70assword={SECRET}", "db=1&SENTINEL_%70assword=***"),
        (f"PASSWORD={SECRET}", "PASSWORD=***"),
    ],
)
def test_config_masks_percent_encoded_password_arguments(query: str, masked: str) -> None:
    url = f"redis://cache.internal:6379/0?{query}"
    for args in (["config"], ["config", "--json"]):
        result = run(args, env={"CONVEYOR_REDIS_URL": url})
        assert result.exit_code == 0, result.output
        assert SECRET not in result.output
        assert f"redis://cache.internal:6379/0?{masked}" in result.stdout


def test_config_refuses_a_password_given_as_a_flag() -> None:
    url = f"redis://cache.internal:6379/0?%70assword={SECRET}"
    result = run(["config", "--redis-url", url])
    assert result.exit_code == 2
    assert SECRET not in result.output
    assert "CONVEYOR_REDIS_URL" in result.stderr


def test_bad_configuration_exits_2_listing_every_problem() -> None:
    result = run(
        ["config", "--json", "--log-format", "xml"],
        env={
            "CONVEYOR_CONCURRENCY": "abc",
            "CONVEYOR_QUEUES": "",
            "CONVEYOR_REDIS_URL": f"http://user:{SECRET}@host/0",
        },
    )
    assert result.exit_code == 2
    assert result.stdout == ""
    problems = [line.strip() for line in result.stderr.splitlines() if line.startswith("  - ")]
    assert problems == [
        "- CONVEYOR_REDIS_URL: must be a redis://, rediss://, unix://, redis+cluster:// or "
        "redis+sentinel:// URL, got 'http://user:***@host/0'",
        "- CONVEYOR_QUEUES: must name at least one of the queue names, got ''",
        "- CONVEYOR_CONCURRENCY: must be an integer between 1 and 1000, got 'abc'",
        "- --log-format: must be one of json, console, got 'xml'",
    ]
    assert SECRET not in result.output


def test_a_missing_config_file_exits_2(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    result = run(["config", "--config", str(missing)])
    assert result.exit_code == 2
    assert f"config file {missing}: not found" in result.stderr


# --- settings flags on other commands ------------------------------------------------------


@click.command("probe")
@settings_options
@click.option("--concurrency", type=int, default=None)
def probe_command(config: str | None, **flags: Any) -> None:
    settings = settings_from_cli(config, **flags)
    click.echo(f"{settings.key_prefix} {settings.concurrency} {settings.log_format}")


def test_settings_options_only_override_when_given() -> None:
    runner = CliRunner()
    env = {"CONVEYOR_KEY_PREFIX": "env", "CONVEYOR_CONCURRENCY": "5"}
    result = runner.invoke(probe_command, [], env=env, catch_exceptions=False)
    assert result.stdout == "env 5 json\n"
    result = runner.invoke(
        probe_command,
        ["--key-prefix", "flag", "--concurrency", "6", "--log-format", "console"],
        env=env,
        catch_exceptions=False,
    )
    assert result.stdout == "flag 6 console\n"


def test_settings_options_exit_2_on_problems() -> None:
    result = CliRunner().invoke(probe_command, ["--concurrency", "0", "--key-prefix", "a b"])
    assert result.exit_code == 2
    assert "--key-prefix: must match" in result.stderr
    assert "--concurrency: must be an integer between 1 and 1000, got 0" in result.stderr


def test_settings_options_help_names_the_environment_variable() -> None:
    result = CliRunner().invoke(probe_command, ["--help"])
    assert "--redis-url" in result.stdout
    assert "CONVEYOR_REDIS_URL" in result.stdout
    assert "CONVEYOR_CONFIG" in result.stdout


# --- plugged-in commands -------------------------------------------------------------------


@click.command("hello")
def hello_command() -> None:
    """Say hello."""
    click.echo("hello from a plugin")


NOT_A_COMMAND = object()


@pytest.fixture
def plugins(monkeypatch: pytest.MonkeyPatch) -> dict[str, EntryPoint]:
    group = cli.ENTRY_POINT_GROUP
    found = {
        "hello": EntryPoint("hello", f"{__name__}:hello_command", group),
        "broken": EntryPoint("broken", "tests.unit.no_such_module:command", group),
        "odd": EntryPoint("odd", f"{__name__}:NOT_A_COMMAND", group),
    }
    monkeypatch.setattr(cli, "_entry_points", lambda: found)
    monkeypatch.setattr(main, "_plugins", {})
    return found


@pytest.mark.usefixtures("plugins")
def test_plugged_in_commands_run() -> None:
    result = run(["hello"])
    assert result.exit_code == 0
    assert result.stdout == "hello from a plugin\n"
    assert result.stderr == ""


@pytest.mark.usefixtures("plugins")
def test_broken_commands_are_skipped_with_a_warning() -> None:
    result = run(["--help"])
    assert result.exit_code == 0
    assert "hello" in result.stdout
    assert "config" in result.stdout
    assert "broken" not in result.stdout
    assert "skipping command 'broken' (tests.unit.no_such_module:command)" in result.stderr
    assert "ModuleNotFoundError" in result.stderr
    assert "skipping command 'odd'" in result.stderr
    assert "not a click command" in result.stderr


@pytest.mark.usefixtures("plugins")
def test_config_works_without_loading_any_plugin() -> None:
    result = run(["config", "--json"])
    assert result.exit_code == 0
    assert result.stderr == ""
    assert main._plugins == {}


def test_the_cli_module_does_not_import_the_api_or_the_worker() -> None:
    code = (
        "import sys, shared.cli; "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('api', 'worker')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[]"
