"""Metric label cardinality: at most `metrics_max_types` job types (and `max_queues` queue
names) per process get series of their own; the rest are counted under "_other"."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from conveyor.metrics import OTHER, ApiMetrics, LabelCap, SchedulerMetrics, WorkerMetrics
from tests.api.conftest import app_client, make_settings
from tests.metrics.support import scrape, value

pytestmark = pytest.mark.anyio


def label_values(text: str, sample_name: str, label: str) -> set[str]:
    return {
        s.labels[label]
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample_name
    }


def series(text: str, sample_name: str) -> int:
    return sum(
        1
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == sample_name
    )


def test_a_cap_keeps_the_first_values_seen() -> None:
    cap = LabelCap(2)
    assert [cap(v) for v in ["a", "b", "c", "a", "d", "b"]] == ["a", "b", OTHER, "a", OTHER, "b"]


def test_500_job_types_make_at_most_cap_plus_one_created_series() -> None:
    metrics = ApiMetrics(CollectorRegistry(), max_types=100)
    for i in range(500):
        metrics.job_created("q", f"type-{i}")
    metrics.job_created("q", "type-7")
    text = scrape(metrics.registry)
    assert series(text, "conveyor_jobs_created_total") == 101
    assert value(text, "conveyor_jobs_created_total", queue="q", type=OTHER) == 400
    assert value(text, "conveyor_jobs_created_total", queue="q", type="type-7") == 2


def test_queue_names_beyond_the_cap_are_folded_too() -> None:
    metrics = ApiMetrics(CollectorRegistry(), max_types=10, max_queues=3)
    for i in range(20):
        metrics.job_created(f"q{i}", "t")
    text = scrape(metrics.registry)
    assert label_values(text, "conveyor_jobs_created_total", "queue") == {"q0", "q1", "q2", OTHER}
    assert value(text, "conveyor_jobs_created_total", queue=OTHER, type="t") == 17

    scheduler = SchedulerMetrics(CollectorRegistry(), max_queues=2)
    for i in range(5):
        scheduler.promoted.labels(f"q{i}").inc()
    text = scrape(scheduler.registry)
    assert value(text, "conveyor_jobs_promoted_total", queue=OTHER) == 3


def test_worker_job_series_are_capped() -> None:
    metrics = WorkerMetrics(CollectorRegistry(), max_types=5)
    for i in range(500):
        series_ = metrics.job("default", f"t{i}")
        series_.completed.inc()
        series_.duration.observe(0.01)
    assert metrics.job("default", "t499") is metrics.job("default", OTHER)
    text = scrape(metrics.registry)
    assert series(text, "conveyor_jobs_completed_total") == 6
    assert series(text, "conveyor_job_duration_seconds_count") == 6
    assert value(text, "conveyor_jobs_completed_total", queue="default", type=OTHER) == 495


async def test_the_api_counts_types_beyond_the_setting_as_other(
    redis_url: str, prefix: str
) -> None:
    settings = make_settings(redis_url, prefix, api_auth="none", metrics_max_types=3)
    async with app_client(settings) as client:
        jobs = [{"type": f"kind-{i}", "queue": "q"} for i in range(20)]
        assert (await client.post("/jobs/batch", json={"jobs": jobs})).status_code == 201
        text = (await client.get("/metrics")).text
    types = label_values(text, "conveyor_jobs_created_total", "type")
    assert len(types) == 4
    assert OTHER in types
    assert value(text, "conveyor_jobs_created_total", queue="q", type=OTHER) == 17
