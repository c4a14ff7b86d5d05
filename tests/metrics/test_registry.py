"""The metric sets on their own: fresh registries, cached label children, queue gauges."""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from conveyor.metrics import ApiMetrics, WorkerMetrics, queue_metrics
from conveyor.values import QueueStats
from tests.metrics.support import families, sample, scrape, value


def test_each_registry_starts_from_zero() -> None:
    first, second = WorkerMetrics(CollectorRegistry()), WorkerMetrics(CollectorRegistry())
    first.job("mail", "email.send").completed.inc()
    assert value(scrape(first.registry), "conveyor_jobs_completed_total", queue="mail",
                 type="email.send") == 1  # fmt: skip
    assert sample(scrape(second.registry), "conveyor_jobs_completed_total", queue="mail",
                  type="email.send") is None  # fmt: skip


def test_job_series_are_cached_per_queue_and_type() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    assert metrics.job("q", "t") is metrics.job("q", "t")
    assert metrics.job("q", "t") is not metrics.job("q", "u")


def test_worker_metric_names() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.job("q", "t").wait.observe(0.2)
    metrics.reclaimed.inc()
    text = scrape(metrics.registry)
    assert {
        "conveyor_jobs_completed",
        "conveyor_jobs_failed",
        "conveyor_jobs_retried",
        "conveyor_jobs_canceled",
        "conveyor_job_duration_seconds",
        "conveyor_job_wait_seconds",
        "conveyor_jobs_recovered",
        "conveyor_stale_completions",
        "conveyor_jobs_run_alone",
        "conveyor_jobs_limited",
        "conveyor_jobs_in_flight",
        "conveyor_worker_concurrency",
    } <= families(text)
    assert value(text, "conveyor_job_wait_seconds_count", queue="q", type="t") == 1
    assert value(text, "conveyor_job_wait_seconds_sum", queue="q", type="t") == 0.2
    assert value(text, "conveyor_jobs_recovered_total", reason="reclaimed") == 1
    assert value(text, "conveyor_jobs_recovered_total", reason="poison") == 0
    metrics.held_back.inc(2)
    text = scrape(metrics.registry)
    assert value(text, "conveyor_jobs_limited_total", reason="concurrency") == 2
    assert value(text, "conveyor_jobs_limited_total", reason="rate") == 0


def test_http_methods_outside_the_known_set_share_one_label() -> None:
    metrics = ApiMetrics(CollectorRegistry())
    metrics.request("BREW", "unmatched", 405, 0.01)
    metrics.request("GET", "/jobs", 200, 0.01)
    metrics.request("GET", "/jobs", 200, 0.01)
    text = scrape(metrics.registry)
    assert value(text, "conveyor_http_requests_total", method="other", route="unmatched",
                 status="405") == 1  # fmt: skip
    assert value(text, "conveyor_http_requests_total", method="GET", route="/jobs",
                 status="200") == 2  # fmt: skip
    assert value(text, "conveyor_http_request_duration_seconds_count", method="GET",
                 route="/jobs") == 2  # fmt: skip


def test_queue_gauges_of_stats() -> None:
    stats = [
        QueueStats("a", 3, 2, 2, 1, 4, 5, 9, 0, 2, 1.5),
        QueueStats("b", 0, 0, 0, 0, 0, 0, 0, 0, 0, None),
    ]
    registry = CollectorRegistry()
    for family in queue_metrics(stats):
        registry.register(_Fixed(family))
    text = scrape(registry)
    assert value(text, "conveyor_queue_waiting", queue="a") == 3
    assert value(text, "conveyor_queue_pending", queue="a") == 2
    assert value(text, "conveyor_queue_scheduled", queue="a") == 1
    assert value(text, "conveyor_queue_retrying", queue="a") == 4
    assert value(text, "conveyor_queue_failed", queue="a") == 5
    assert value(text, "conveyor_queue_consumers", queue="a") == 2
    assert value(text, "conveyor_queue_oldest_waiting_age_seconds", queue="a") == 1.5
    assert sample(text, "conveyor_queue_waiting", queue="b") == 0
    assert sample(text, "conveyor_queue_oldest_waiting_age_seconds", queue="b") is None
    assert queue_metrics([]) == []


class _Fixed(Collector):
    def __init__(self, family: Metric) -> None:
        self.family = family

    def collect(self) -> Iterable[Metric]:
        return [self.family]
