"""The clients' shared rules, pure: list filters, batch options, heartbeats, JSON readers."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from conveyor import jobspec
from conveyor.errors import ValidationError
from conveyor.http_client import queue_from_json, worker_from_json
from conveyor.ids import new_job_id
from conveyor.states import Status
from conveyor.values import ListQuery, QueueStats, WorkerInfo


def test_list_query_of_the_filters() -> None:
    cursor = new_job_id()
    after = datetime(2026, 1, 1, tzinfo=UTC)
    query = jobspec.list_query(
        {"status": ["failed", "canceled"], "queue": "q", "cursor": cursor, "created_after": after}
    )
    assert query == ListQuery(
        statuses=(Status.FAILED, Status.CANCELED),
        queue="q",
        limit=50,
        cursor=cursor,
        created_after_ms=int(after.timestamp() * 1000),
    )
    assert jobspec.list_query({"status": "failed", "limit": 500}).statuses == (Status.FAILED,)
    assert jobspec.list_query({}) == ListQuery()


@pytest.mark.parametrize(
    ("filters", "field"),
    [
        ({"status": "sleeping"}, "status"),
        ({"status": ["failed", 3]}, "status"),
        ({"limit": True}, "limit"),
        ({"limit": "5"}, "limit"),
        ({"queue": "bad{name}"}, "queue"),
        ({"cursor": "x"}, "cursor"),
        ({"created_before": datetime(2026, 1, 1)}, "created_before"),
        ({"page": 2}, "page"),
    ],
)
def test_list_query_names_the_bad_filter(filters: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as err:
        jobspec.list_query(filters)  # type: ignore[arg-type]
    assert err.value.field == field


def test_batch_options_refuse_what_an_item_may_not_carry() -> None:
    assert jobspec.batch_options(("t", 1), 0) == ("t", 1, {})
    assert jobspec.batch_options(("t", 1, {"queue": "q"}), 0) == ("t", 1, {"queue": "q"})
    with pytest.raises(ValidationError) as err:
        jobspec.batch_options(("t", 1, {"correlation_id": "c"}), 4)
    assert err.value.field == "jobs/4/correlation_id"


def test_build_refuses_an_unknown_option() -> None:
    with pytest.raises(ValidationError) as err:
        jobspec.build("t", None, field_prefix="jobs/2/", colour="red")  # type: ignore[call-arg]
    assert err.value.field == "jobs/2/colour"


def test_worker_info_from_a_heartbeat_and_back_from_json() -> None:
    raw = {
        "id": "w1",
        "host": "h",
        "pid": "12",
        "queues": "a,b,",
        "concurrency": "4",
        "in_flight": "x",
        "started_at": "1700000000000.0",
        "last_seen": "1700000001234",
    }
    info = WorkerInfo.from_heartbeat(raw)
    assert info == WorkerInfo(
        id="w1",
        host="h",
        pid=12,
        queues=("a", "b"),
        concurrency=4,
        in_flight=None,  # garbled: None rather than an error
        started_at=1_700_000_000_000,
        last_seen=1_700_000_001_234,
    )
    shown = info.to_json()
    assert shown["last_seen"] == "2023-11-14T22:13:21.234Z"
    assert worker_from_json({**shown, "stale": False}) == info


def test_queue_stats_back_from_json() -> None:
    stats = QueueStats("q", 1, 2, 3, 4, 5, 6, 7, 8, 9, 1.5)
    assert queue_from_json(stats.to_json()) == stats
    assert queue_from_json({**stats.to_json(), "oldest_waiting_age_seconds": None}) == QueueStats(
        "q", 1, 2, 3, 4, 5, 6, 7, 8, 9, None
    )


def test_queue_stats_carry_expired_and_paused_and_default_them_when_absent() -> None:
    stats = QueueStats("q", 1, 2, 3, 4, 5, 6, 7, 8, 9, None, expired=4, paused=True)
    assert queue_from_json(stats.to_json()) == stats
    older = {k: v for k, v in stats.to_json().items() if k not in ("expired", "paused")}
    back = queue_from_json(older)  # an API from before these fields
    assert (back.expired, back.paused) == (0, False)
    with pytest.raises(Exception, match="paused must be a boolean"):
        queue_from_json({**stats.to_json(), "paused": 1})
