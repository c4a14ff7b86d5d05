"""Schedule definitions: validation naming each field, fire times (every_seconds and cron,
in a time zone), the derived job ids, and the plan of a pass over due fire times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from conveyor.ids import job_id_time_ms, validate_job_id
from conveyor.schedules import CatchUp, Overlap, ScheduleSpec, fire_job_id, parse_schedule
from conveyor.worker.periodic import MAX_LATE_FIRES, plan_fires

LIMIT = 1024


def parse(body: dict[str, Any], name: str = "nightly") -> ScheduleSpec:
    spec, errors, too_large = parse_schedule(name, body, max_payload_bytes=LIMIT)
    assert errors == []
    assert too_large is None
    assert spec is not None
    return spec


def fields_of(body: dict[str, Any], name: str = "nightly") -> list[str]:
    spec, errors, _ = parse_schedule(name, body, max_payload_bytes=LIMIT)
    assert spec is None
    return [e.field for e in errors]


def ms(
    year: int,
    month: int,
    day: int,
    hour: int = 0,
    minute: int = 0,
    second: int = 0,
    *,
    tz: str = "UTC",
) -> int:
    moment = datetime(year, month, day, hour, minute, second, tzinfo=ZoneInfo(tz))
    return int(moment.timestamp() * 1000)


def test_a_minimal_definition_takes_the_defaults() -> None:
    spec = parse({"type": "report.daily", "cron": "0 9 * * *"})
    assert (spec.queue, spec.timezone, spec.overlap, spec.catch_up) == (
        "default",
        "UTC",
        Overlap.ALLOW,
        CatchUp.ONE,
    )
    assert spec.timing == "cron 0 9 * * * UTC"
    assert parse({"type": "t", "every_seconds": 5}).timing == "every 5"


@pytest.mark.parametrize(
    ("body", "fields"),
    [
        ({"cron": "* * * * *"}, ["type"]),
        ({"type": "t"}, ["cron"]),
        ({"type": "t", "cron": "* * * * *", "every_seconds": 1}, ["cron"]),
        ({"type": "t", "cron": "61 * * * *"}, ["cron"]),
        ({"type": "t", "cron": "* * * *"}, ["cron"]),
        ({"type": "t", "cron": "@daily"}, ["cron"]),
        ({"type": "t", "cron": 5}, ["cron"]),
        ({"type": "t", "cron": "* * * * *", "timezone": "Mars/Olympus"}, ["timezone"]),
        ({"type": "t", "cron": "* * * * *", "timezone": "../../etc/passwd"}, ["timezone"]),
        ({"type": "t", "every_seconds": 0}, ["every_seconds"]),
        ({"type": "t", "every_seconds": True}, ["every_seconds"]),
        ({"type": "t", "every_seconds": 1.5}, ["every_seconds"]),
        ({"type": "t", "every_seconds": 5, "timezone": "UTC"}, ["timezone"]),
        ({"type": "t", "every_seconds": 5, "overlap": "never"}, ["overlap"]),
        ({"type": "t", "every_seconds": 5, "catch_up": "all"}, ["catch_up"]),
        ({"type": "t", "every_seconds": 5, "max_attempts": 0}, ["max_attempts"]),
        ({"type": "t", "every_seconds": 5, "timeout_seconds": -1}, ["timeout_seconds"]),
        ({"type": "bad{type}", "every_seconds": 5, "queue": "a:b"}, ["type", "queue"]),
        ({"type": "t", "every_seconds": 5, "delay_seconds": 3}, ["delay_seconds"]),
    ],
)
def test_each_bad_field_is_named(body: dict[str, Any], fields: list[str]) -> None:
    assert sorted(fields_of(body)) == sorted(fields)


def test_a_bad_name_is_named() -> None:
    assert fields_of({"type": "t", "every_seconds": 5}, name="a{b}") == ["name"]


def test_a_payload_over_the_limit_is_reported_apart() -> None:
    spec, errors, too_large = parse_schedule(
        "n", {"type": "t", "every_seconds": 5, "payload": "x" * 2000}, max_payload_bytes=LIMIT
    )
    assert spec is None
    assert errors == []
    assert too_large is not None


def test_every_seconds_fires_on_multiples_of_the_interval_since_the_epoch() -> None:
    spec = parse({"type": "t", "every_seconds": 60})
    assert spec.next_after(ms(2030, 1, 1, 12, 0)) == ms(2030, 1, 1, 12, 1)
    assert spec.next_after(ms(2030, 1, 1, 12, 0) - 1) == ms(2030, 1, 1, 12, 0)
    assert spec.latest_before(ms(2030, 1, 1, 12, 0)) == ms(2030, 1, 1, 11, 59)
    assert spec.latest_before(ms(2030, 1, 1, 12, 0) + 1) == ms(2030, 1, 1, 12, 0)


def test_cron_with_seconds_and_a_time_zone() -> None:
    spec = parse({"type": "t", "cron": "30 0 9 * * *", "timezone": "Europe/Paris"})
    start = ms(2030, 1, 1, 0, 0, tz="Europe/Paris")
    first = spec.next_after(start)
    assert first == ms(2030, 1, 1, 9, 0, 30, tz="Europe/Paris")
    assert spec.next_after(first) == ms(2030, 1, 2, 9, 0, 30, tz="Europe/Paris")
    assert spec.latest_before(first) == ms(2029, 12, 31, 9, 0, 30, tz="Europe/Paris")
    assert spec.latest_before(first + 1) == first
    assert spec.latest_before(first + 999) == first


def test_a_fire_time_has_one_valid_job_id_carrying_that_time() -> None:
    t = ms(2030, 1, 1, 9, 0)
    job_id = fire_job_id("nightly", t)
    assert validate_job_id(job_id) == job_id
    assert job_id_time_ms(job_id) == t
    assert fire_job_id("nightly", t) == job_id
    assert fire_job_id("nightly", t + 1000) != job_id
    assert fire_job_id("weekly", t) != job_id


EVERY = parse({"type": "t", "every_seconds": 1})
GRACE = 10_000
T0 = ms(2030, 1, 1)


def test_nothing_is_planned_before_the_next_fire_time() -> None:
    plan = plan_fires(EVERY, T0, T0 - 1, GRACE)
    assert (plan.fires, plan.missed, plan.next_run_at) == ([], 0, T0)


def test_late_fire_times_all_fire() -> None:
    plan = plan_fires(EVERY, T0, T0 + 2_500, GRACE)
    assert plan.fires == [T0, T0 + 1000, T0 + 2000]
    assert (plan.missed, plan.next_run_at) == (0, T0 + 3000)


@pytest.mark.parametrize("catch_up", ["one", "none"])
def test_missed_fire_times_follow_catch_up(catch_up: str) -> None:
    spec = parse({"type": "t", "every_seconds": 1, "catch_up": catch_up})
    now = T0 + 100_000  # 100 s without a scheduler: fire times T0 .. T0+90s were missed
    plan = plan_fires(spec, T0, now, GRACE)
    late = [T0 + s * 1000 for s in range(90, 101)]
    if catch_up == "one":
        assert plan.fires == [T0 + 89_000, *late]
        assert plan.missed == 89
    else:
        assert plan.fires == late
        assert plan.missed == 90
    assert plan.next_run_at == now + 1000


def test_a_long_outage_is_jumped_over_not_walked() -> None:
    now = T0 + 400 * 86_400_000
    plan = plan_fires(EVERY, T0, now, GRACE)
    assert plan.fires[0] == now - GRACE - 1000
    assert plan.missed == 999  # counted up to MAX_COUNTED
    assert plan.next_run_at == now + 1000


def test_late_fires_of_one_pass_are_bounded() -> None:
    plan = plan_fires(EVERY, T0, T0 + 10 * 60_000, 20 * 60_000)
    assert len(plan.fires) == MAX_LATE_FIRES
    assert plan.next_run_at == T0 + MAX_LATE_FIRES * 1000


def test_cron_catch_up_in_a_time_zone() -> None:
    spec = parse({"type": "t", "cron": "0 9 * * *", "timezone": "America/New_York"})
    first = ms(2030, 1, 1, 9, tz="America/New_York")
    now = ms(2030, 1, 5, 12, tz="America/New_York")
    plan = plan_fires(spec, first, now, GRACE)
    assert plan.fires == [ms(2030, 1, 5, 9, tz="America/New_York")]
    assert plan.missed == 4
    assert plan.next_run_at == ms(2030, 1, 6, 9, tz="America/New_York")
    assert datetime.fromtimestamp(plan.next_run_at / 1000, UTC).hour == 14
