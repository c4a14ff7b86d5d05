"""Which Redis errors mean "the store is not serving now": retry later, not a bug.

One classifier for every caller: the API answers these 503 with ``Retry-After``; the
worker's loops, the finisher and the scheduler back off and retry. Besides a lost
connection or a timeout, a Redis Cluster is "not serving" while it forms, fails over or
reshards, and says so in several ways:

- replies: ``CLUSTERDOWN`` (`ClusterDownError`, whose text redis-py strips of the code: "The
  cluster is down"), ``MASTERDOWN`` (`MasterDownError`), ``TRYAGAIN`` (`TryAgainError`),
  ``LOADING`` (`BusyLoadingError`), ``READONLY`` (`ReadOnlyError`: a replica, just demoted,
  still answering), ``OOM`` (`OutOfMemoryError`: full, until keys expire or jobs are
  deleted);
- redirections redis-py gave up following (`ClusterError`: its retries exhausted;
  `MovedError`, `AskError` that escape it);
- redis-py's own cluster errors outside `RedisError`: `SlotNotCoveredError` (no node serves
  a slot) and a plain `RedisClusterException` (no node answers, slots not all covered).

Not "not serving": a script error, a wrong type, keys of several slots in one command
(`ClusterCrossSlotError`, `CrossSlotTransactionError`): those are bugs, retrying won't help.
"""

from __future__ import annotations

from redis import exceptions as e

# Every exception a call to Redis may raise that is about Redis (and not about the caller's
# arguments): what the worker's loops catch. `OSError`: a socket error redis-py let through.
STORE_ERRORS: tuple[type[BaseException], ...] = (e.RedisError, e.RedisClusterException, OSError)

_NOT_SERVING_TYPES: tuple[type[BaseException], ...] = (
    e.ConnectionError,  # includes BusyLoadingError (LOADING), MaxConnectionsError
    e.TimeoutError,
    e.ClusterError,  # includes ClusterDownError and MasterDownError
    e.TryAgainError,
    e.AskError,  # includes MovedError
    e.ReadOnlyError,
    e.OutOfMemoryError,
    e.SlotNotCoveredError,
    OSError,
)
# The reply codes of those states, for a reply redis-py raised as a plain ResponseError.
_NOT_SERVING_REPLIES = (
    "LOADING",
    "MASTERDOWN",
    "READONLY",
    "OOM",
    "TRYAGAIN",
    "CLUSTERDOWN",
    "MOVED",
    "ASK",
)
# redis-py's cluster errors outside RedisError that are bugs, not states of the cluster.
_CLUSTER_BUGS: tuple[type[BaseException], ...] = (
    e.CrossSlotTransactionError,
    e.InvalidPipelineStack,
)


def store_not_serving(exc: BaseException) -> bool:
    """Whether `exc` means Redis is not serving now (retry later) rather than a bug."""
    if isinstance(exc, _NOT_SERVING_TYPES):
        return True
    if isinstance(exc, e.ResponseError):
        return str(exc).startswith(_NOT_SERVING_REPLIES)
    if isinstance(exc, e.RedisClusterException):
        return not isinstance(exc, _CLUSTER_BUGS)
    return False
