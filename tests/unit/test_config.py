"""Settings resolution: precedence, strictness, every problem at once, secrets never shown."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import pytest

from conveyor.backoff import Jitter, RetryPolicy
from conveyor.config import (
    CONFIG_ENV,
    ENV_PREFIX,
    SETTINGS_SPECS,
    Settings,
    config_table_markdown,
    effective_config,
    env_name,
    load_resolution,
    load_settings,
    mask_url,
    resolve,
    resolve_with_sources,
)
from conveyor.errors import ConfigError
from conveyor.redis_conn import RedisCheck, check_redis, connect, connect_sync, describe_url

SECRET = "s3cr3t-Pa55"


def problems_of(toml: dict[str, Any], environ: dict[str, str], flags: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        resolve(toml, environ, flags)
    return caught.value.problems


def write(path: Path, text: str) -> str:
    path.write_text(text)
    return str(path)


# --- the table -----------------------------------------------------------------------------


def test_defaults_match_the_table() -> None:
    settings = resolve({}, {}, {})
    assert settings == Settings()
    expected = {
        "redis_url": "redis://127.0.0.1:6379/0",
        "key_prefix": "conveyor",
        "queues": ("default",),
        "concurrency": 64,
        "max_concurrency": 1000,
        "handlers": (),
        "handlers_path": (".",),
        "api_handlers": (),
        "max_attempts": 3,
        "job_timeout_seconds": 300.0,
        "retry_base_seconds": 1.0,
        "retry_factor": 2.0,
        "retry_max_seconds": 300.0,
        "retry_jitter": "full",
        "lease_seconds": 30.0,
        "max_deliveries": 5,
        "result_ttl_seconds": 604800,
        "shutdown_timeout_seconds": 30.0,
        "max_payload_bytes": 1048576,
        "api_host": "127.0.0.1",
        "api_port": 8000,
        "redis_timeout_seconds": 2.0,
        "redis_wait_replicas": 0,
        "redis_wait_timeout_seconds": 0.5,
        "heartbeat_seconds": 5.0,
        "api_tokens": (),
        "api_read_tokens": (),
        "api_tokens_file": "",
        "api_auth": "token",
        "metrics_auth": "none",
        "trusted_hosts": (),
        "cors_origins": (),
        "max_batch_jobs": 1000,
        "max_queues": 1000,
        "max_limits_per_queue": 100,
        "max_schedules": 1000,
        "schedule_grace_seconds": 10,
        "max_list_bytes": 8388608,
        "idempotency_ttl_seconds": 86400,
        "stats_cache_seconds": 1.0,
        "metrics_max_types": 100,
        "api_limit_concurrency": 1000,
        "api_keepalive_timeout_seconds": 5.0,
        "api_header_timeout_seconds": 10.0,
        "metrics_port": 0,
        "log_level": "INFO",
        "log_format": "json",
    }
    assert {spec.name: spec.default for spec in SETTINGS_SPECS} == expected
    assert dataclasses.asdict(settings) == {**expected, "queue_weights": ()}


def test_every_field_is_in_the_table_once_with_help_and_env_name() -> None:
    names = [spec.name for spec in SETTINGS_SPECS]
    assert names == [f.name for f in dataclasses.fields(Settings) if f.init]
    for spec in SETTINGS_SPECS:
        assert spec.env == env_name(spec.name) == ENV_PREFIX + spec.name.upper()
        assert spec.help.strip()
    secrets = [spec.name for spec in SETTINGS_SPECS if spec.secret]
    assert secrets == ["redis_url", "api_tokens", "api_read_tokens"]


def test_readme_table_has_a_row_per_setting() -> None:
    table = config_table_markdown()
    rows = table.strip().splitlines()[2:]
    assert len(rows) == len(SETTINGS_SPECS)
    assert "| `CONVEYOR_CONCURRENCY` | `concurrency` | `64` |" in table
    assert "| `CONVEYOR_HANDLERS` | `handlers` | `(none)` |" in table


# --- precedence ----------------------------------------------------------------------------


def test_each_layer_overrides_the_one_below() -> None:
    toml = {"concurrency": 2, "key_prefix": "fromfile", "max_attempts": 7, "api_port": 9001}
    environ = {"CONVEYOR_KEY_PREFIX": "fromenv", "CONVEYOR_MAX_ATTEMPTS": "8"}
    flags = {"max_attempts": 9, "log_level": None}
    resolution = resolve_with_sources(toml, environ, flags, toml_source="config file c.toml")
    settings = resolution.settings
    assert settings.lease_seconds == 30.0  # default
    assert settings.concurrency == 2  # file
    assert settings.api_port == 9001  # file
    assert settings.key_prefix == "fromenv"  # env over file
    assert settings.max_attempts == 9  # flag over env over file
    assert settings.log_level == "INFO"  # a None flag is "not given"
    assert resolution.sources["lease_seconds"] == "default"
    assert resolution.sources["concurrency"] == "config file c.toml"
    assert resolution.sources["key_prefix"] == "env CONVEYOR_KEY_PREFIX"
    assert resolution.sources["max_attempts"] == "flag --max-attempts"


def test_string_flags_are_parsed_like_the_environment() -> None:
    settings = resolve({}, {}, {"concurrency": "12", "queues": "high, low", "handlers": "a.b,c"})
    assert settings.concurrency == 12
    assert settings.queues == ("high", "low")
    assert settings.handlers == ("a.b", "c")


def test_environment_strings_are_parsed() -> None:
    environ = {
        "CONVEYOR_QUEUES": " high , default ,",
        "CONVEYOR_CONCURRENCY": " 25 ",
        "CONVEYOR_LEASE_SECONDS": "0.5",
        "CONVEYOR_LOG_LEVEL": "debug",
        "CONVEYOR_LOG_FORMAT": "CONSOLE",
        "CONVEYOR_RETRY_JITTER": "Equal",
        "CONVEYOR_HANDLERS": "",
    }
    settings = resolve({}, environ, {})
    assert settings.queues == ("high", "default")
    assert settings.concurrency == 25
    assert settings.lease_seconds == 0.5
    assert settings.log_level == "DEBUG"
    assert settings.log_format == "console"
    assert settings.retry_jitter == "equal"
    assert settings.handlers == ()


def test_toml_lists_and_integers_for_floats_are_accepted() -> None:
    settings = resolve({"queues": ["a", "b"], "job_timeout_seconds": 60}, {}, {})
    assert settings.queues == ("a", "b")
    assert settings.job_timeout_seconds == 60.0
    assert isinstance(settings.job_timeout_seconds, float)


def test_unknown_conveyor_variables_are_ignored() -> None:
    settings = resolve({}, {"CONVEYOR_NOT_A_SETTING": "x", "OTHER": "y"}, {})
    assert settings == Settings()


def test_retry_policy_comes_from_the_settings() -> None:
    environ = {
        "CONVEYOR_RETRY_BASE_SECONDS": "2",
        "CONVEYOR_RETRY_FACTOR": "3",
        "CONVEYOR_RETRY_MAX_SECONDS": "60",
        "CONVEYOR_RETRY_JITTER": "none",
    }
    assert resolve({}, environ, {}).retry_policy == RetryPolicy(2.0, 3.0, 60.0, Jitter.NONE)


# --- problems ------------------------------------------------------------------------------


def test_every_problem_is_listed_at_once_with_its_source() -> None:
    problems = problems_of(
        {"concurrency": 0, "max_payload_bytes": 512},
        {
            "CONVEYOR_CONCURRENCY": "abc",
            "CONVEYOR_KEY_PREFIX": "bad prefix!",
            "CONVEYOR_QUEUES": "ok,no{braces}",
            "CONVEYOR_HANDLERS": "good.mod,not-a-module",
            "CONVEYOR_JOB_TIMEOUT_SECONDS": "86401",
            "CONVEYOR_RETRY_FACTOR": "0.5",
            "CONVEYOR_LEASE_SECONDS": "0.1",
            "CONVEYOR_API_PORT": "70000",
            "CONVEYOR_RETRY_JITTER": "some",
        },
        {"log_format": "xml", "log_level": "verbose"},
    )
    assert "CONVEYOR_CONCURRENCY: must be an integer between 1 and 1000, got 'abc'" in problems
    assert "concurrency in config file: must be an integer between 1 and 1000, got 0" in problems
    expected_starts = [
        "CONVEYOR_KEY_PREFIX: must match [A-Za-z0-9._-]{1,32}",
        "CONVEYOR_QUEUES: queue name 'no{braces}' must match",
        "CONVEYOR_HANDLERS: 'not-a-module' is not a dotted Python module path",
        "CONVEYOR_JOB_TIMEOUT_SECONDS: must be a number > 0 and <= 86400",
        "CONVEYOR_RETRY_FACTOR: must be a number >= 1",
        "CONVEYOR_LEASE_SECONDS: must be a number >= 0.5",
        "max_payload_bytes in config file: must be an integer between 1024 and 67108864",
        "CONVEYOR_API_PORT: must be an integer between 0 and 65535",
        "CONVEYOR_RETRY_JITTER: must be one of full, equal, none",
        "--log-level: must be one of DEBUG, INFO, WARNING, ERROR",
        "--log-format: must be one of json, console",
    ]
    for start in expected_starts:
        assert [p for p in problems if p.startswith(start)], (start, problems)
    assert len(problems) == len(expected_starts) + 2


def test_the_exception_message_lists_every_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        resolve({}, {"CONVEYOR_CONCURRENCY": "0", "CONVEYOR_MAX_ATTEMPTS": "x"}, {})
    message = str(caught.value)
    assert "CONVEYOR_CONCURRENCY" in message
    assert "CONVEYOR_MAX_ATTEMPTS" in message


@pytest.mark.parametrize(
    ("key", "value", "kind"),
    [
        ("concurrency", "3", "a string"),
        ("concurrency", 3.0, "a float"),
        ("concurrency", True, "a boolean"),
        ("lease_seconds", "30", "a string"),
        ("key_prefix", 5, "an integer"),
        ("queues", ["a", 1], "an array"),
        ("queues", {"a": 1}, "a table"),
        ("log_level", 10, "an integer"),
    ],
)
def test_toml_values_must_have_the_right_type(key: str, value: object, kind: str) -> None:
    [problem] = problems_of({key: value}, {}, {})
    assert problem.startswith(f"{key} in config file: must ")
    assert problem.endswith(f", got {value!r} ({kind})")


def test_environment_values_are_checked_for_range_after_parsing() -> None:
    assert problems_of({}, {"CONVEYOR_CONCURRENCY": "1001"}, {}) == [
        "CONVEYOR_CONCURRENCY: must be an integer between 1 and 1000, got '1001'"
    ]
    assert problems_of({}, {"CONVEYOR_CONCURRENCY": "2.5"}, {})
    assert problems_of({}, {"CONVEYOR_HEARTBEAT_SECONDS": "nan"}, {})
    assert problems_of({}, {"CONVEYOR_RETRY_MAX_SECONDS": "inf"}, {})
    assert problems_of({}, {"CONVEYOR_RESULT_TTL_SECONDS": "0"}, {}) == [
        "CONVEYOR_RESULT_TTL_SECONDS: must be an integer >= 1, got '0'"
    ]


def test_queues_must_not_be_empty_nor_repeated() -> None:
    assert problems_of({}, {"CONVEYOR_QUEUES": " , "}, {}) == [
        "CONVEYOR_QUEUES: must name at least one of the queue names, got ' , '"
    ]
    assert problems_of({"queues": []}, {}, {})
    [problem] = problems_of({}, {"CONVEYOR_QUEUES": "a,b,a"}, {})
    assert "must not repeat queue names: a" in problem


def test_unknown_toml_key_is_a_problem_with_a_suggestion() -> None:
    problems = problems_of({"concurency": 3, "colour": "red"}, {}, {})
    assert "concurency in config file: unknown setting (did you mean concurrency?)" in problems
    assert "colour in config file: unknown setting" in problems


def test_retry_max_below_base_names_both_sources() -> None:
    problems = problems_of({"retry_base_seconds": 10}, {"CONVEYOR_RETRY_MAX_SECONDS": "5"}, {})
    assert problems == [
        "CONVEYOR_RETRY_MAX_SECONDS: must be >= retry_base_seconds (10, from config file), got 5"
    ]


def test_a_flag_that_is_not_a_setting_is_a_programming_error() -> None:
    with pytest.raises(TypeError, match="json"):
        resolve({}, {}, {"json": True})


def test_direct_construction_is_validated_and_normalised() -> None:
    with pytest.raises(ConfigError) as caught:
        Settings(concurrency=0, log_level="info")
    assert caught.value.problems == [
        "concurrency: must be an integer between 1 and 1000, got 0",
    ]
    settings = Settings(log_level="warning", queues=["a", "b"])  # type: ignore[arg-type]
    assert settings.log_level == "WARNING"
    assert settings.queues == ("a", "b")


@pytest.mark.parametrize(
    "url",
    [
        "redis://localhost:6379/0",
        "redis://127.0.0.1",
        "rediss://user:pw@cache.example.com:6380/2",
        "redis://[::1]:6379/0",
        "unix:///run/redis/redis.sock?db=1",
    ],
)
def test_valid_redis_urls(url: str) -> None:
    assert resolve({}, {"CONVEYOR_REDIS_URL": url}, {}).redis_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://localhost:6379",
        "localhost:6379",
        "redis://",
        "redis://host:notaport/0",
        "redis://host:6379/zero",
        "unix://",
        "",
    ],
)
def test_invalid_redis_urls(url: str) -> None:
    [problem] = problems_of({}, {"CONVEYOR_REDIS_URL": url}, {})
    assert problem.startswith("CONVEYOR_REDIS_URL: must")


# --- secrets -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        ("redis://user:pw@host:6379/0", "redis://user:***@host:6379/0"),
        ("redis://:pw@host:6379/0", "redis://:***@host:6379/0"),
        ("rediss://user:pw@host", "rediss://user:***@host"),
        ("redis://host:6379/0", "redis://host:6379/0"),
        ("redis://user@host/0", "redis://user@host/0"),
        ("redis://u:p@ss:w@rd@host/0", "redis://u:***@host/0"),
        ("redis://u:pw@[::1]:6379/0", "redis://u:***@[::1]:6379/0"),
        ("unix://:pw@/run/redis.sock?db=0", "unix://:***@/run/redis.sock?db=0"),
        ("redis://host/0?password=pw&db=1", "redis://host/0?password=***&db=1"),
        ("redis://host/0?%70assword=pw", "redis://host/0?%70assword=***"),
        ("redis://host/0?db=1&pass%77ord=pw", "redis://host/0?db=1&pass%77ord=***"),
        ("redis://host/0?%50ASSWORD=pw", "redis://host/0?%50ASSWORD=***"),
        ("redis://host/0?SENTINEL_%70assword=pw", "redis://host/0?SENTINEL_%70assword=***"),
        ("redis://host/0?sentinel%5Fpassword=pw", "redis://host/0?sentinel%5Fpassword=***"),
        ("redis://host/0?password", "redis://host/0?password"),  # no value given
        ("redis://host/0?passwords=x&db=1", "redis://host/0?passwords=x&db=1"),
        ("redis://u:pw/x@host/0", "***"),  # an unencoded "/" in the password
        ("user:pw@host:6379", "***"),  # no scheme
        ("redis://u:pw@[::1/0", "***"),  # not parseable
    ],
)
def test_mask_url(url: str, masked: str) -> None:
    assert mask_url(url) == masked
    assert describe_url(url) == masked


def test_effective_config_masks_the_password_and_lists_every_setting() -> None:
    settings = resolve({}, {"CONVEYOR_REDIS_URL": f"rediss://app:{SECRET}@db:6380/1"}, {})
    shown = effective_config(settings)
    assert list(shown) == [spec.name for spec in SETTINGS_SPECS]
    assert shown["redis_url"] == "rediss://app:***@db:6380/1"
    assert shown["queues"] == ["default"]
    assert SECRET not in str(shown)
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
    assert settings.redis_url == f"rediss://app:{SECRET}@db:6380/1"  # the real value is kept


@pytest.mark.parametrize(
    "url",
    [
        f"http://user:{SECRET}@host/0",
        f"redis://user:{SECRET}@host:bad/0",
        f"user:{SECRET}@host",
        f"redis://:{SECRET}@host/db",
        f"redis://u:{SECRET}@[::1",
    ],
)
def test_problems_and_exceptions_never_show_the_password(url: str) -> None:
    layers: list[tuple[dict[str, object], dict[str, str]]] = [
        ({"redis_url": url}, {}),
        ({}, {"CONVEYOR_REDIS_URL": url}),
    ]
    for toml, environ in layers:
        with pytest.raises(ConfigError) as caught:
            resolve(toml, environ, {})
        assert caught.value.problems
        assert SECRET not in str(caught.value)
        assert SECRET not in repr(caught.value)
        assert SECRET not in "".join(caught.value.problems)
        assert caught.value.__cause__ is None
        assert caught.value.__context__ is None
    with pytest.raises(ConfigError) as caught:
        Settings(redis_url=url)
    assert SECRET not in str(caught.value)


def test_a_non_string_secret_is_described_by_its_type_only() -> None:
    [problem] = problems_of({"redis_url": {"password": SECRET}}, {}, {})
    assert problem == (
        "redis_url in config file: must be a redis://, rediss://, unix://, redis+cluster:// "
        "or redis+sentinel:// URL, got a table"
    )


# --- the file ------------------------------------------------------------------------------


def test_load_settings_reads_the_file_given(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'concurrency = 4\nqueues = ["a", "b"]\n')
    settings = load_settings(path, {"CONVEYOR_CONCURRENCY": "5"}, {})
    assert settings.concurrency == 5
    assert settings.queues == ("a", "b")


def test_load_settings_reads_conveyor_config(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "max_attempts = 6\n")
    resolution = load_resolution(None, {CONFIG_ENV: path}, {})
    assert resolution.settings.max_attempts == 6
    assert resolution.sources["max_attempts"] == f"config file {path}"


def test_the_path_argument_wins_over_conveyor_config(tmp_path: Path) -> None:
    given = write(tmp_path / "given.toml", "max_attempts = 6\n")
    from_env = write(tmp_path / "env.toml", "max_attempts = 7\n")
    assert load_settings(given, {CONFIG_ENV: from_env}, {}).max_attempts == 6


def test_a_conveyor_table_may_hold_the_settings(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", "[tool]\nx = 1\n\n[conveyor]\nconcurrency = 3\n")
    assert load_settings(path, {}, {}).concurrency == 3


def test_no_file_means_defaults() -> None:
    assert load_settings(None, {}, {}) == Settings()


def test_load_settings_defaults_to_the_process_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CONVEYOR_CONCURRENCY", "17")
    monkeypatch.delenv(CONFIG_ENV, raising=False)
    assert os.environ["CONVEYOR_CONCURRENCY"] == "17"
    assert load_settings(None).concurrency == 17


def test_a_missing_file_is_a_problem_reported_with_the_others(tmp_path: Path) -> None:
    missing = str(tmp_path / "nope.toml")
    with pytest.raises(ConfigError) as caught:
        load_settings(missing, {"CONVEYOR_CONCURRENCY": "0"}, {})
    assert caught.value.problems == [
        f"config file {missing}: not found",
        "CONVEYOR_CONCURRENCY: must be an integer between 1 and 1000, got '0'",
    ]


def test_invalid_toml_is_a_problem(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.toml", "concurrency = = 3\n")
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {}, {})
    [problem] = caught.value.problems
    assert problem.startswith(f"config file {path}: invalid TOML")


def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings(str(tmp_path), {}, {})  # a directory
    [problem] = caught.value.problems
    assert problem.startswith(f"config file {tmp_path}: cannot be read")


def test_problems_in_the_file_name_the_file(tmp_path: Path) -> None:
    path = write(tmp_path / "c.toml", 'concurrency = "3"\nbogus = 1\n')
    with pytest.raises(ConfigError) as caught:
        load_settings(path, {}, {})
    assert caught.value.problems == [
        f"bogus in config file {path}: unknown setting",
        f"concurrency in config file {path}: must be an integer between 1 and 1000, "
        "got '3' (a string)",
    ]


# --- connections ---------------------------------------------------------------------------


async def _close(client: Any) -> None:
    await client.aclose()


def test_connect_takes_every_option_from_the_settings() -> None:
    import asyncio

    settings = Settings(redis_url=f"redis://u:{SECRET}@cache:6390/3", redis_timeout_seconds=1.5)
    client = connect(settings, blocking_read_seconds=5)
    try:
        kwargs = client.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 6.5
        assert kwargs["socket_connect_timeout"] == 1.5
        assert kwargs["decode_responses"] is False
        assert kwargs["health_check_interval"] == 30
        assert kwargs["client_name"] == "conveyor"
        assert (kwargs["host"], kwargs["port"], kwargs["db"]) == ("cache", 6390, 3)
        assert kwargs["retry"].get_retries() == 1
    finally:
        asyncio.run(_close(client))
    sync = connect_sync(settings)
    try:
        kwargs = sync.connection_pool.connection_kwargs
        assert kwargs["socket_timeout"] == 1.5
        assert kwargs["retry"].get_retries() == 1
    finally:
        sync.close()


class FakeConfigRedis:
    def __init__(self, values: dict[bytes, bytes] | None) -> None:
        self.values = values

    async def config_get(self, *patterns: str) -> dict[bytes, bytes]:
        from redis.exceptions import ResponseError

        if self.values is None:
            raise ResponseError("unknown command 'CONFIG'")
        wanted = [p.encode() for p in patterns]
        return {k: v for k, v in self.values.items() if k in wanted}


def check(values: dict[bytes, bytes] | None) -> RedisCheck:
    import asyncio

    return asyncio.run(check_redis(FakeConfigRedis(values)))  # type: ignore[arg-type]


def test_check_redis_is_quiet_when_redis_keeps_jobs() -> None:
    assert check({b"maxmemory-policy": b"noeviction", b"appendonly": b"yes"}) == RedisCheck()


def test_eviction_is_unsafe_and_no_aof_a_warning() -> None:
    found = check({b"maxmemory-policy": b"allkeys-lru", b"appendonly": b"no"})
    assert found.unsafe == (
        "maxmemory-policy is allkeys-lru; Conveyor needs noeviction or jobs can be evicted",
    )
    assert found.warnings == ("appendonly is off: a Redis restart loses jobs",)
    assert found.messages == [*found.unsafe, *found.warnings]


@pytest.mark.parametrize("policy", [b"volatile-lru", b"allkeys-random", b"volatile-ttl"])
def test_every_evicting_policy_is_unsafe(policy: bytes) -> None:
    assert check({b"maxmemory-policy": policy, b"appendonly": b"yes"}).unsafe


def test_check_redis_warns_when_config_get_is_refused() -> None:
    found = check(None)
    assert found.unsafe == ()
    [warning] = found.warnings
    assert warning.startswith("could not check maxmemory-policy and appendonly")


def test_tokens_are_never_echoed_in_problems_or_effective_config() -> None:
    token = "s3cret-token-" + "x" * 20
    with pytest.raises(ConfigError) as caught:
        resolve({}, {"CONVEYOR_API_TOKENS": f"{token},short"}, {})
    assert token not in str(caught.value)
    assert "short" not in str(caught.value)
    settings = resolve({}, {"CONVEYOR_API_READ_TOKENS": token}, {})
    assert settings.api_read_tokens == (token,)
    shown = effective_config(settings)
    assert shown["api_read_tokens"] == ["***"]
    assert token not in repr(settings)


def test_weighted_queues_give_names_and_weights() -> None:
    settings = resolve({}, {"CONVEYOR_QUEUES": "high:5, default:2,low"}, {})
    assert settings.queues == ("high", "default", "low")
    assert settings.queue_weights == (5, 2, 1)
    assert resolve({"queues": ["a:3", "b"]}, {}, {}).queue_weights == (3, 1)
    assert resolve({}, {}, {"queues": "a,b"}).queue_weights == ()


@pytest.mark.parametrize("text", ["high:0", "high:x", "high:", "a:2,a:3"])
def test_bad_queue_weights_are_refused(text: str) -> None:
    with pytest.raises(ConfigError, match=r"(?i)queues"):
        resolve({}, {"CONVEYOR_QUEUES": text}, {})


def test_concurrency_is_bounded_by_max_concurrency() -> None:
    with pytest.raises(ConfigError, match="max_concurrency"):
        resolve({}, {"CONVEYOR_CONCURRENCY": "20", "CONVEYOR_MAX_CONCURRENCY": "10"}, {})
