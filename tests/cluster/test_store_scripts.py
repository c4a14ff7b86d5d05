"""The store tests, run again against a 3-master Redis Cluster.

Every transition script, the pipelined round trips (several queues' scripts in one
pipeline, reads over every queue) and the inspection reads run here exactly as the store
tests run them against one server; the fixtures (`r`, `other_client`) come from this
directory's conftest, which hands out Cluster clients.
"""

from __future__ import annotations

from types import ModuleType

import pytest

from tests.store import (
    test_cancel,
    test_claim,
    test_enqueue,
    test_expire,
    test_expiry,
    test_finish,
    test_id_index,
    test_idempotency,
    test_inspect,
    test_listing,
    test_pause,
    test_promote,
    test_purge,
    test_queue_registry,
    test_renew_reclaim,
    test_replay,
    test_workers_registry,
)

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]

MODULES: tuple[ModuleType, ...] = (
    test_cancel,
    test_claim,
    test_enqueue,
    test_expire,
    test_expiry,
    test_finish,
    test_id_index,
    test_idempotency,
    test_inspect,
    test_listing,
    test_pause,
    test_promote,
    test_purge,
    test_queue_registry,
    test_renew_reclaim,
    test_replay,
    test_workers_registry,
)
# Not repeated: these race clients of the standalone test server (`redis_server`), or
# count the round trips of one server's pipeline.
SKIPPED = {
    "test_concurrent_identical_creates_make_exactly_one_job",
    "test_racing_schedulers_promote_each_job_exactly_once",
    "test_round_trips_do_not_grow_with_the_number_of_queues",
    "test_a_create_into_a_known_queue_is_one_round_trip",
    "test_a_lookup_by_id_costs_the_same_whatever_the_number_of_queues",
    "test_a_create_with_an_idempotency_key_reads_the_key_first",
    # read_claim.lua over two queues (two slots): a Cluster worker reads, then claims.
    "test_a_paused_queue_does_not_hold_back_the_others",
    "test_an_idle_fetch_does_not_wait_on_a_paused_queue",
}


def _is_fixture(value: object) -> bool:
    return type(value).__name__ == "FixtureFunctionDefinition" or hasattr(
        value, "_pytestfixturefunction"
    )


# Each test is collected as <module>__<test> (two modules may name a test alike), next to
# the fixtures its module defines.
for _module in MODULES:
    _short = _module.__name__.rsplit(".", 1)[1]
    for _name, _value in vars(_module).items():
        if _name.startswith("test_") and callable(_value) and _name not in SKIPPED:
            globals()[f"{_short}__{_name.removeprefix('test_')}"] = _value
        elif _is_fixture(_value) and _name not in globals():
            globals()[_name] = _value
