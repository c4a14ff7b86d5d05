"""docker-compose.yml: Redis that keeps jobs (AOF, noeviction, a named volume), services that
wait for a healthy Redis, two workers with time to drain on stop, and only real settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml  # type: ignore[import-untyped]

from conveyor.config import CONFIG_ENV, SETTINGS_SPECS

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SERVICES = ("redis", "api", "worker", "scheduler")
CONVEYOR = ("api", "worker", "scheduler")
KNOWN_ENV = {spec.env for spec in SETTINGS_SPECS} | {CONFIG_ENV}


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE.read_text())  # merge keys (<<) are resolved here
    assert isinstance(loaded, dict)
    return loaded


def service(compose: dict[str, Any], name: str) -> dict[str, Any]:
    found = compose["services"][name]
    assert isinstance(found, dict)
    return found


def environment(svc: dict[str, Any]) -> dict[str, str]:
    env = svc.get("environment", {})
    if isinstance(env, list):  # the "KEY=value" form
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(key): str(value) for key, value in env.items()}


def seconds(duration: str | int | float) -> float:
    """A compose duration ("40s", "1m30s", "500ms") in seconds."""
    if isinstance(duration, int | float):
        return float(duration)
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6}
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|us|h|m|s)", duration)
    assert parts, f"not a duration: {duration!r}"
    assert "".join(n + u for n, u in parts) == duration, f"not a duration: {duration!r}"
    return sum(float(number) * units[unit] for number, unit in parts)


def test_duration_parser() -> None:
    assert seconds("40s") == 40
    assert seconds("1m30s") == 90
    assert seconds("500ms") == 0.5
    assert seconds(12) == 12
    with pytest.raises(AssertionError):
        seconds("forty")


def test_services(compose: dict[str, Any]) -> None:
    assert set(SERVICES) <= set(compose["services"])


@pytest.mark.parametrize("name", SERVICES)
def test_every_service_has_a_healthcheck(compose: dict[str, Any], name: str) -> None:
    check = service(compose, name).get("healthcheck")
    assert check, f"{name} has no healthcheck"
    assert not check.get("disable", False)
    assert check["test"][0] in {"CMD", "CMD-SHELL"}
    assert "curl" not in " ".join(check["test"]), "the images have no curl"


def test_redis_is_pinned_and_keeps_its_data(compose: dict[str, Any]) -> None:
    redis = service(compose, "redis")
    assert redis["image"] == "redis:7.0-bookworm"
    command = redis["command"]
    words = command.split() if isinstance(command, str) else [str(w) for w in command]
    assert words[0] == "redis-server"
    pairs = dict(zip(words[1::2], words[2::2], strict=True))
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"
    # Evicting a job hash or a stream entry would lose jobs: refuse writes instead.
    assert pairs["--maxmemory-policy"] == "noeviction"
    assert "redis-cli" in redis["healthcheck"]["test"]
    assert "ping" in redis["healthcheck"]["test"]


def test_redis_data_is_on_a_named_volume(compose: dict[str, Any]) -> None:
    mounts = service(compose, "redis")["volumes"]
    named = [m.split(":")[0] for m in mounts if isinstance(m, str) and m.endswith(":/data")]
    assert named, "Redis keeps /data on a volume"
    volume = named[0]
    assert not volume.startswith((".", "/", "~")), "a named volume, not a bind mount"
    assert volume in (compose.get("volumes") or {}), f"{volume} is declared under volumes:"


@pytest.mark.parametrize("name", CONVEYOR)
def test_waits_for_a_healthy_redis(compose: dict[str, Any], name: str) -> None:
    depends = service(compose, name)["depends_on"]
    assert isinstance(depends, dict), "the long form, with a condition"
    assert depends["redis"]["condition"] == "service_healthy"


def test_images(compose: dict[str, Any]) -> None:
    api, worker = service(compose, "api"), service(compose, "worker")
    scheduler = service(compose, "scheduler")
    assert api["build"]["dockerfile"] == "Dockerfile.api"
    assert worker["build"]["dockerfile"] == "Dockerfile.worker"
    assert scheduler["build"]["dockerfile"] == "Dockerfile.worker"
    assert scheduler["image"] == worker["image"], "the scheduler runs the worker image"
    command = scheduler["command"]
    assert (command.split() if isinstance(command, str) else command) == ["scheduler"]
    assert [str(p) for p in api["ports"]] == ["127.0.0.1:8000:8000"]


def test_the_open_api_is_published_on_the_loopback_only(compose: dict[str, Any]) -> None:
    """The compose API runs without tokens (api_auth none), so no other machine may reach
    it: every published port is bound to 127.0.0.1."""
    api = service(compose, "api")
    assert environment(api)["CONVEYOR_API_AUTH"] == "none"
    for port in api["ports"]:
        assert str(port).startswith("127.0.0.1:"), port


def test_two_workers_with_time_to_drain(compose: dict[str, Any]) -> None:
    worker = service(compose, "worker")
    assert worker["deploy"]["replicas"] == 2
    default = next(s.default for s in SETTINGS_SPECS if s.name == "shutdown_timeout_seconds")
    timeout = float(environment(worker).get("CONVEYOR_SHUTDOWN_TIMEOUT_SECONDS", str(default)))
    grace = seconds(worker["stop_grace_period"])
    assert grace > timeout, f"stop_grace_period {grace}s must exceed the {timeout}s drain"


@pytest.mark.parametrize("name", CONVEYOR)
def test_settings_come_from_the_environment(compose: dict[str, Any], name: str) -> None:
    env = environment(service(compose, name))
    assert env["CONVEYOR_REDIS_URL"] == "redis://redis:6379/0"
    if name != "api":
        assert env["CONVEYOR_METRICS_PORT"] == "9100", "the healthcheck asks the probe port"


def test_every_conveyor_variable_is_a_real_setting(compose: dict[str, Any]) -> None:
    used = set(re.findall(r"\bCONVEYOR_[A-Z0-9_]+", COMPOSE.read_text()))
    for svc in compose["services"].values():
        used |= {key for key in environment(svc) if key.startswith("CONVEYOR_")}
    assert used, "the compose file configures Conveyor through CONVEYOR_* variables"
    unknown = sorted(used - KNOWN_ENV)
    assert not unknown, f"not Conveyor settings (typos?): {unknown}"


def test_healthcheck_ports_match_the_settings(compose: dict[str, Any]) -> None:
    for name, setting in (
        ("api", "CONVEYOR_API_PORT"),
        ("worker", "CONVEYOR_METRICS_PORT"),
        ("scheduler", "CONVEYOR_METRICS_PORT"),
    ):
        svc = service(compose, name)
        port = environment(svc).get(setting, "8000")
        assert f":{port}/healthz" in " ".join(svc["healthcheck"]["test"]), name
