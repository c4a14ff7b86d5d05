"""Which Redis errors mean "not serving now" (retry, 503) and which are bugs (500)."""

from __future__ import annotations

import pytest
from redis import exceptions as e

from conveyor.commands.failures import CommandFailed, failures
from conveyor.redis_errors import STORE_ERRORS, store_not_serving

NOT_SERVING = [
    e.ConnectionError("Connection refused"),
    e.TimeoutError("Timeout reading from socket"),
    e.BusyLoadingError("Redis is loading the dataset in memory"),
    e.ClusterDownError("The cluster is down"),  # redis-py strips the CLUSTERDOWN code
    e.MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
    e.TryAgainError("Multiple keys request during rehashing of slot"),
    e.ClusterError("TTL exhausted."),  # redirections followed until redis-py gave up
    e.MovedError("3999 127.0.0.1:6381"),
    e.AskError("3999 127.0.0.1:6381"),
    e.ReadOnlyError("You can't write against a read only replica."),
    e.OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
    e.SlotNotCoveredError("Slot 3999 not covered by the cluster."),
    e.RedisClusterException("Redis Cluster cannot be connected."),
    e.ResponseError("CLUSTERDOWN Hash slot not served"),  # as a script's error reply
    e.ResponseError("TRYAGAIN Multiple keys request during rehashing of slot"),
    e.ResponseError("LOADING Redis is loading the dataset in memory"),
    e.ResponseError("MASTERDOWN Link with MASTER is down"),
    e.ResponseError("READONLY You can't write against a read only replica."),
    ConnectionResetError(104, "Connection reset by peer"),
]

BUGS = [
    e.ResponseError("ERR Error running script (call to f_1234): user_script:1: oops"),
    e.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"),
    e.NoScriptError("No matching script."),
    e.ClusterCrossSlotError("Keys in request don't hash to the same slot"),
    e.CrossSlotTransactionError("All keys involved in a cluster transaction must map to one slot"),
    e.InvalidPipelineStack("pipeline stack is invalid"),
    e.DataError("Invalid input of type: 'dict'."),
    ValueError("not about Redis"),
    RuntimeError("not about Redis"),
]


@pytest.mark.parametrize("exc", NOT_SERVING, ids=lambda x: f"{type(x).__name__}:{x}")
def test_not_serving(exc: BaseException) -> None:
    assert store_not_serving(exc)


@pytest.mark.parametrize("exc", BUGS, ids=lambda x: f"{type(x).__name__}:{x}")
def test_bugs_are_not_not_serving(exc: BaseException) -> None:
    assert not store_not_serving(exc)


@pytest.mark.parametrize("exc", NOT_SERVING, ids=lambda x: type(x).__name__)
def test_the_loops_catch_every_not_serving_error(exc: BaseException) -> None:
    assert isinstance(exc, STORE_ERRORS)


@pytest.mark.parametrize(
    "exc", [e.ClusterDownError("The cluster is down"), e.SlotNotCoveredError("Slot 1")]
)
def test_commands_say_not_serving_without_a_traceback_or_the_password(exc: Exception) -> None:
    with pytest.raises(CommandFailed) as failed, failures("redis://:hunter2@db:6379/0"):
        raise exc
    message = str(failed.value)
    assert "not serving now" in message
    assert type(exc).__name__ in message
    assert "hunter2" not in message
    assert "redis://:***@db:6379/0" in message


def test_commands_report_a_redis_bug_as_refused() -> None:
    with pytest.raises(CommandFailed, match="refused the command"), failures(None):
        raise e.ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value")
