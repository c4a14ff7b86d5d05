"""Cluster and Sentinel URLs: parsed and checked at start, passwords never shown, and the
right kind of client built from them (no server needed)."""

from __future__ import annotations

import os

import pytest
import redis.asyncio.cluster
import redis.exceptions
from click.testing import CliRunner
from redis.asyncio import Redis
from redis.asyncio.sentinel import SentinelConnectionPool

from conveyor.cli import main
from conveyor.config import Settings, resolve
from conveyor.config_redis import Mode, parse_target
from conveyor.config_values import mask_url
from conveyor.errors import ConfigError
from conveyor.redis_conn import connect_url, describe_url, is_cluster
from tests.helpers.redis_server import free_port

SECRET = "hunter2-Secret"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("CONVEYOR_"):
            monkeypatch.delenv(name)


def problem(url: str) -> str:
    with pytest.raises(ConfigError) as caught:
        resolve({}, {"CONVEYOR_REDIS_URL": url}, {})
    [text] = caught.value.problems
    assert SECRET not in text
    return text


def test_a_cluster_url_names_its_seed_nodes() -> None:
    target = parse_target(f"rediss+cluster://app:{SECRET}@n1:7000,[::1]:7001,n3")
    assert target.mode is Mode.CLUSTER
    assert target.nodes == (("n1", 7000), ("::1", 7001), ("n3", 6379))
    assert (target.tls, target.username, target.password) == (True, "app", SECRET)
    assert SECRET not in repr(target)


def test_a_sentinel_url_names_sentinels_service_and_db() -> None:
    target = parse_target(
        f"redis+sentinel://:{SECRET}@s1,s2:26380/mymaster/2?sentinel_password=p%40ss"
    )
    assert target.mode is Mode.SENTINEL
    assert target.nodes == (("s1", 26379), ("s2", 26380))
    assert (target.service, target.db) == ("mymaster", 2)
    assert (target.password, target.sentinel_password) == (SECRET, "p@ss")


def test_standalone_urls_are_unchanged() -> None:
    for url in ("redis://h:1/0", "rediss://u:p@h", "unix:///run/redis.sock"):
        assert parse_target(url) == parse_target(url)
        assert parse_target(url).mode is Mode.STANDALONE
        assert resolve({}, {"CONVEYOR_REDIS_URL": url}, {}).redis_url == url


@pytest.mark.parametrize(
    ("url", "says"),
    [
        ("redis+sentinel://s1:26379", "must name the monitored primary"),
        ("redis+sentinel://s1:26379/my master", "must name the monitored primary"),
        ("redis+sentinel://s1/mymaster/zero", "must name the database as a number"),
        ("redis+sentinel://s1/mymaster?socket_timeout=1", "unknown option 'socket_timeout'"),
        ("redis+cluster://", "at least one host:port"),
        ("redis+cluster://n1:7000,n1:7000", "node 2 repeats an earlier node"),
        ("redis+cluster://n1:70000", "node 1 must have a port between 1 and 65535"),
        ("redis+cluster://n1:7000,:x", "node 2 must be host:port"),
        ("redis+cluster://n1/3", "Redis Cluster has only db 0"),
        (f"redis://u:{SECRET}@n1:1,n2:2/0", "use redis+cluster://"),
        (f"redis+cluster://u:{SECRET}/x@n1", "percent-encode"),
        ("memcached://n1", "redis+cluster:// or redis+sentinel:// URL"),
    ],
)
def test_a_bad_url_is_refused_with_a_precise_message(url: str, says: str) -> None:
    text = problem(url)
    assert text.startswith("CONVEYOR_REDIS_URL: ")
    assert says in text


def test_wait_is_refused_in_cluster_mode_and_must_end_before_the_timeout() -> None:
    with pytest.raises(ConfigError, match="must be 0 with a redis\\+cluster"):
        resolve(
            {},
            {"CONVEYOR_REDIS_URL": "redis+cluster://n1", "CONVEYOR_REDIS_WAIT_REPLICAS": "1"},
            {},
        )
    with pytest.raises(ConfigError, match="must be < redis_timeout_seconds"):
        Settings(redis_wait_replicas=1, redis_wait_timeout_seconds=2.0)
    assert Settings(redis_url="redis+sentinel://s/m", redis_wait_replicas=1).redis_wait_replicas


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"redis+cluster://u:{SECRET}@n1:1,n2:2", "redis+cluster://u:***@n1:1,n2:2"),
        (
            f"redis+sentinel://:{SECRET}@s1,s2/m?sentinel_password={SECRET}",
            "redis+sentinel://:***@s1,s2/m?sentinel_password=***",
        ),
    ],
)
def test_passwords_are_masked(url: str, masked: str) -> None:
    assert mask_url(url) == describe_url(url) == masked


def test_conveyor_config_exits_2_on_a_bad_cluster_url() -> None:
    result = CliRunner().invoke(
        main, ["config"], env={"CONVEYOR_REDIS_URL": f"redis+cluster://u:{SECRET}@n1:0"}
    )
    assert result.exit_code == 2
    assert "node 1 must have a port between 1 and 65535" in result.stderr
    assert SECRET not in result.output


async def test_each_mode_gets_its_client() -> None:
    cluster = connect_url("redis+cluster://127.0.0.1:1,127.0.0.1:2", timeout_seconds=1)
    sentinel = connect_url("redis+sentinel://127.0.0.1:1/m/3", timeout_seconds=1)
    single = connect_url("redis://127.0.0.1:1/0", timeout_seconds=1)
    try:
        assert type(cluster).__mro__[1] is redis.asyncio.cluster.RedisCluster
        assert is_cluster(cluster)
        assert isinstance(sentinel, Redis)
        assert isinstance(sentinel.connection_pool, SentinelConnectionPool)
        assert sentinel.connection_pool.connection_kwargs["db"] == 3
        assert not is_cluster(sentinel)
        assert not is_cluster(single)
    finally:
        for client in (cluster, sentinel, single):
            await client.aclose()


async def test_a_cluster_nobody_answers_is_a_connection_error() -> None:
    """Worker and scheduler loops wait for Redis on ConnectionError; so must they here."""
    client = connect_url(f"redis+cluster://127.0.0.1:{free_port()}", timeout_seconds=0.5)
    try:
        with pytest.raises(redis.exceptions.ConnectionError):
            await client.ping()
    finally:
        await client.aclose()


pytestmark = pytest.mark.anyio
