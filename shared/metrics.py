"""Prometheus metrics: every metric object of Conveyor, defined in one place.

Nothing here registers with prometheus_client's global default registry: each process (or
test) makes its own `CollectorRegistry` and passes it to the metric sets it uses, so a
fresh registry starts from zero and two registries never share a series.

Label cardinality is bounded by construction:

- ``type``: at most ``max_types`` distinct job types per process (the setting
  ``metrics_max_types``, 100 by default) get a series of their own, the first seen; jobs of
  any further type are counted under ``type="_other"`` (`OTHER`). A job type really named
  ``_other`` (the name is valid) shares those series;
- ``queue``: at most ``max_queues`` distinct queue names per process (the setting
  ``max_queues``), further ones under ``queue="_other"``: queues come and go, so a
  long-lived process could otherwise see more names than exist at once. The queue gauges
  of the API's ``/metrics`` name only the queues its statistics report (the first
  ``max_queues`` by name);
- ``reason`` is one of `RECOVERY_REASONS`;
- ``route`` is a route's path template (``/jobs/{job_id}``), or ``unmatched``: a raw path,
  and so a job id, never becomes a label value;
- ``method`` is one of `HTTP_METHODS`, or ``other``;
- ``status`` is an HTTP status code (at most a few dozen values).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from conveyor.store.stats_cache import StatsCache
from conveyor.values import QueueStats

__all__ = [
    "CONTENT_TYPE_LATEST",
    "HTTP_METHODS",
    "OTHER",
    "RECOVERY_REASONS",
    "UNMATCHED_ROUTE",
    "ApiMetrics",
    "JobSeries",
    "LabelCap",
    "QueueCollector",
    "SchedulerMetrics",
    "WorkerMetrics",
    "process_registry",
    "render",
]

log = logging.getLogger("conveyor.metrics")

RECOVERY_REASONS = ("reclaimed", "returned", "poison")
HTTP_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED_ROUTE = "unmatched"

# Seconds. Jobs range from milliseconds to the longest timeout (a day).
DURATION_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900)
WAIT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
HTTP_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

_JOB_LABELS = ("queue", "type")

OTHER = "_other"  # the label value of every type (or queue) beyond its cap
DEFAULT_MAX_TYPES = 100  # the defaults of the settings metrics_max_types and max_queues
DEFAULT_MAX_QUEUES = 1000


class LabelCap:
    """At most `limit` distinct values of one label, the first seen; any further value
    reads as `OTHER`. Remembers at most `limit` values, so its memory is bounded too."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._seen: set[str] = set()

    def __call__(self, value: str) -> str:
        if value in self._seen:
            return value
        if len(self._seen) < self.limit:
            self._seen.add(value)
            return value
        return OTHER


def process_registry() -> CollectorRegistry:
    """A registry for one process: with the standard ``process_*`` and ``python_info``
    series of prometheus_client (its default registry has them too)."""
    registry = CollectorRegistry()
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> bytes:
    """The registry in the Prometheus text format (`CONTENT_TYPE_LATEST`)."""
    return generate_latest(registry)


# --- worker ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JobSeries:
    """The children of the job metrics for one (queue, type): looked up once, then reused,
    so accounting a job costs no label lookup."""

    completed: Counter
    failed: Counter
    retried: Counter
    canceled: Counter
    duration: Histogram
    wait: Histogram


class WorkerMetrics:
    """What a worker process reports.

    - ``conveyor_jobs_completed_total{queue,type}``: attempts that completed the job;
    - ``conveyor_jobs_failed_total{queue,type}``: jobs that ended failed (attempts used up,
      a permanent error, an unknown type, or poison);
    - ``conveyor_jobs_retried_total{queue,type}``: failed attempts that will be retried;
    - ``conveyor_jobs_canceled_total{queue,type}``: jobs that ended canceled;
    - ``conveyor_job_duration_seconds{queue,type}``: how long attempts ran (every attempt
      that ended with one of the four outcomes above);
    - ``conveyor_job_wait_seconds{queue,type}``: from when the job became ready (created, or
      due) to when an attempt started;
    - ``conveyor_jobs_recovered_total{reason}``: jobs run again or handed back: a delivery
      reclaimed from a dead worker and run (``reclaimed``), a job handed back to the queue
      at shutdown (``returned``), a job failed as poison (``poison``, also counted in
      ``conveyor_jobs_failed_total``);
    - ``conveyor_jobs_run_alone_total``: attempts run with nothing beside them because one
      more lost attempt would make their job poison (see ``worker.last_chance``);
    - ``conveyor_stale_completions_total``: outcomes discarded because the attempt was no
      longer this worker's;
    - ``conveyor_jobs_expired_total{queue}``: jobs a claim ended expired instead of starting
      them (their expires_at had passed);
    - ``conveyor_jobs_handed_back_total{queue}``: deliveries of a paused queue given back to
      its stream unstarted;
    - ``conveyor_jobs_limited_total{reason}``: claimed jobs held back, uncharged, by a limit
      of their queue (ADR 0017): ``concurrency`` (held until a slot frees) or ``rate``
      (scheduled for their reserved start);
    - ``conveyor_jobs_in_flight``: attempts running now;
    - ``conveyor_worker_concurrency``: the most attempts the worker runs at once (its
      size now: it follows a resize while the worker runs, worker/resize.py).

    ``queue`` and ``type`` are capped (`LabelCap`): `max_queues` and `max_types` values.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_types: int = DEFAULT_MAX_TYPES,
        max_queues: int = DEFAULT_MAX_QUEUES,
    ) -> None:
        self.registry = registry
        self._queue_label = LabelCap(max_queues)
        self._type_label = LabelCap(max_types)

        def counter(name: str, doc: str) -> Counter:
            return Counter(name, doc, _JOB_LABELS, registry=registry)

        self.completed = counter("conveyor_jobs_completed", "Jobs completed.")
        self.failed = counter("conveyor_jobs_failed", "Jobs that ended failed.")
        self.retried = counter("conveyor_jobs_retried", "Failed attempts that will be retried.")
        self.canceled = counter("conveyor_jobs_canceled", "Jobs that ended canceled.")
        self.duration = Histogram(
            "conveyor_job_duration_seconds",
            "How long job attempts ran.",
            _JOB_LABELS,
            buckets=DURATION_BUCKETS,
            registry=registry,
        )
        self.wait = Histogram(
            "conveyor_job_wait_seconds",
            "From when a job became ready to when an attempt of it started.",
            _JOB_LABELS,
            buckets=WAIT_BUCKETS,
            registry=registry,
        )
        recovered = Counter(
            "conveyor_jobs_recovered",
            "Jobs reclaimed from dead workers, returned at shutdown, or failed as poison.",
            ("reason",),
            registry=registry,
        )
        self.reclaimed = recovered.labels("reclaimed")
        self.returned = recovered.labels("returned")
        self.poison = recovered.labels("poison")
        self.run_alone = Counter(
            "conveyor_jobs_run_alone",
            "Attempts run alone: one more lost attempt would make their job poison.",
            registry=registry,
        )
        limited = Counter(
            "conveyor_jobs_limited",
            "Claimed jobs held back by a concurrency or rate limit, not started, not charged.",
            ("reason",),
            registry=registry,
        )
        self.held_back = limited.labels("concurrency")
        self.rate_limited = limited.labels("rate")
        self.stale = Counter(
            "conveyor_stale_completions",
            "Attempt outcomes discarded: the attempt was no longer this worker's.",
            registry=registry,
        )
        self.expired = CappedQueueCounter(
            Counter(
                "conveyor_jobs_expired",
                "Jobs ended expired, unstarted: their expires_at had passed.",
                ("queue",),
                registry=registry,
            ),
            max_queues,
        )
        self.handed_back = CappedQueueCounter(
            Counter(
                "conveyor_jobs_handed_back",
                "Deliveries of a paused queue given back to its stream unstarted.",
                ("queue",),
                registry=registry,
            ),
            max_queues,
        )
        self.in_flight = Gauge(
            "conveyor_jobs_in_flight", "Job attempts running now.", registry=registry
        )
        self.concurrency = Gauge(
            "conveyor_worker_concurrency",
            "The most job attempts the worker runs at once.",
            registry=registry,
        )
        self._series: dict[tuple[str, str], JobSeries] = {}

    def job(self, queue: str, job_type: str) -> JobSeries:
        """The series of (queue, type), made on first use (under `OTHER` beyond the caps)."""
        key = (queue, job_type)
        series = self._series.get(key)
        if series is None:
            queue, job_type = self._queue_label(queue), self._type_label(job_type)
            key = (queue, job_type)
            series = self._series.get(key)
        if series is None:
            series = self._series[key] = JobSeries(
                self.completed.labels(queue, job_type),
                self.failed.labels(queue, job_type),
                self.retried.labels(queue, job_type),
                self.canceled.labels(queue, job_type),
                self.duration.labels(queue, job_type),
                self.wait.labels(queue, job_type),
            )
        return series


class CappedQueueCounter:
    """A counter labelled by ``queue`` whose `labels` maps the names beyond `max_queues`
    to `OTHER`."""

    def __init__(self, counter: Counter, max_queues: int) -> None:
        self.counter = counter
        self._queue_label = LabelCap(max_queues)

    def labels(self, queue: str) -> Counter:
        return self.counter.labels(self._queue_label(queue))


class SchedulerMetrics:
    """What a scheduler process reports: ``conveyor_jobs_promoted_total{queue}``, the
    scheduled and retrying jobs it moved onto their queue's stream, and
    ``conveyor_jobs_expired_total{queue}``, the due ones it ended expired instead (their
    expires_at had passed) (``queue`` capped at `max_queues` values, `LabelCap`),
    and what periodic schedules did: fires, fire times skipped, and the lag of their jobs
    (worker/periodic.py)."""

    def __init__(
        self, registry: CollectorRegistry, *, max_queues: int = DEFAULT_MAX_QUEUES
    ) -> None:
        self.registry = registry
        self.promoted = CappedQueueCounter(
            Counter(
                "conveyor_jobs_promoted",
                "Due scheduled and retrying jobs moved onto their queue.",
                ("queue",),
                registry=registry,
            ),
            max_queues,
        )
        self.expired = CappedQueueCounter(
            Counter(
                "conveyor_jobs_expired",
                "Due jobs ended expired instead of promoted: their expires_at had passed.",
                ("queue",),
                registry=registry,
            ),
            max_queues,
        )
        self.schedule_fires = Counter(
            "conveyor_schedule_fires",
            "Jobs created by periodic schedules (one per fire time that got a job).",
            registry=registry,
        )
        self.schedule_skipped = Counter(
            "conveyor_schedule_skipped",
            "Fire times of periodic schedules that got no job: reason missed (older than "
            "schedule_grace_seconds, dropped under catch_up) or overlap (overlap: skip).",
            ("reason",),
            registry=registry,
        )
        self.schedule_lag = Histogram(
            "conveyor_schedule_lag_seconds",
            "How long after its fire time a periodic schedule's job was created.",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 60.0),
            registry=registry,
        )


# --- API ---------------------------------------------------------------------------------------


class ApiMetrics:
    """What the HTTP API reports.

    - ``conveyor_jobs_created_total{queue,type}``: jobs created (idempotent repeats, which
      create nothing, are not counted);
    - ``conveyor_http_requests_total{method,route,status}`` and
      ``conveyor_http_request_duration_seconds{method,route}``: every HTTP request, by the
      path template of the route that took it (``unmatched`` when none did).

    ``queue`` and ``type`` are capped (`LabelCap`): `max_queues` and `max_types` values.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        max_types: int = DEFAULT_MAX_TYPES,
        max_queues: int = DEFAULT_MAX_QUEUES,
    ) -> None:
        self.registry = registry
        self._queue_label = LabelCap(max_queues)
        self._type_label = LabelCap(max_types)
        self.created = Counter(
            "conveyor_jobs_created", "Jobs created.", _JOB_LABELS, registry=registry
        )
        self.requests = Counter(
            "conveyor_http_requests",
            "HTTP requests answered.",
            ("method", "route", "status"),
            registry=registry,
        )
        self.request_duration = Histogram(
            "conveyor_http_request_duration_seconds",
            "How long HTTP requests took, until the response was sent.",
            ("method", "route"),
            buckets=HTTP_BUCKETS,
            registry=registry,
        )
        self._created: dict[tuple[str, str], Counter] = {}
        self._http: dict[tuple[str, str], Histogram] = {}
        self._requests: dict[tuple[str, str, int], Counter] = {}

    def job_created(self, queue: str, job_type: str) -> None:
        key = (queue, job_type)
        child = self._created.get(key)
        if child is None:
            key = (self._queue_label(queue), self._type_label(job_type))
            child = self._created.get(key)
            if child is None:
                child = self._created[key] = self.created.labels(*key)
        child.inc()

    def request(self, method: str, route: str, status: int, seconds: float) -> None:
        if method not in HTTP_METHODS:
            method = "other"
        key = (method, route)
        histogram = self._http.get(key)
        if histogram is None:
            histogram = self._http[key] = self.request_duration.labels(method, route)
        histogram.observe(seconds)
        status_key = (method, route, status)
        counter = self._requests.get(status_key)
        if counter is None:
            counter = self._requests[status_key] = self.requests.labels(method, route, status)
        counter.inc()


_QUEUE_GAUGES: tuple[tuple[str, str, str], ...] = (
    ("waiting", "waiting", "Jobs on the stream not yet delivered to a worker."),
    ("pending", "pending_in_group", "Jobs delivered to a worker (in the group's PEL)."),
    ("scheduled", "scheduled", "Jobs waiting for their run time."),
    ("retrying", "retrying", "Jobs waiting for their next attempt."),
    ("failed", "failed", "Jobs that ended failed (kept for the result ttl)."),
    ("consumers", "consumers", "Consumers of the queue's group, idle ones included."),
    ("expired", "expired", "Jobs that ended expired, never started (kept for the result ttl)."),
    ("paused", "paused", "1 while the queue is paused (no job of it starts), else 0."),
)


class QueueCollector(Collector):
    """The queue gauges of the API's ``/metrics``, read from Redis at scrape time:
    ``conveyor_queue_{waiting,pending,scheduled,retrying,failed,consumers,expired,paused}``
    ``{queue}`` and
    ``conveyor_queue_oldest_waiting_age_seconds{queue}`` (only for queues with a waiting
    job), plus ``conveyor_queues`` (the queues known) and ``conveyor_queues_reported`` (how
    many of them have gauges: the first `max_queues` by name).

    Collectors are called synchronously, and the numbers come from an async client: the
    scrape first awaits `refresh` (the process's `StatsCache`: a snapshot at most
    ``stats_cache_seconds`` old, shared with ``GET /queues``), then renders the registry,
    whose `collect` yields what that refresh read. When Redis could not be read, the gauges
    are absent (and a warning is logged) rather than stale.
    """

    def __init__(self, cache: StatsCache) -> None:
        self.cache = cache
        self._stats: list[QueueStats] = []
        self._total: int | None = None

    async def refresh(self) -> bool:
        """Read the statistics of the queues; False (and no gauges) when Redis failed."""
        try:
            snapshot = await self.cache.get()
        except Exception as exc:  # Redis down or slow: the scrape still answers
            self._stats, self._total = [], None
            log.warning("queue metrics unavailable", extra={"error": str(exc) or repr(exc)})
            return False
        self._stats, self._total = list(snapshot.items), snapshot.total
        return True

    def describe(self) -> Iterable[Metric]:
        return ()  # nothing to check at registration; the names are fixed above

    def collect(self) -> Iterator[Metric]:
        families = queue_metrics(self._stats)
        if self._total is not None:
            for name, doc, value in (
                ("conveyor_queues", "Queues known (holding jobs).", self._total),
                (
                    "conveyor_queues_reported",
                    "Queues with gauges of their own (the first max_queues by name).",
                    len(self._stats),
                ),
            ):
                families.append(GaugeMetricFamily(name, doc, value=float(value)))
        return iter(families)


def queue_metrics(stats: Iterable[QueueStats]) -> list[Metric]:
    stats = list(stats)
    if not stats:
        return []
    families: list[Metric] = []
    for suffix, attr, doc in _QUEUE_GAUGES:
        family = GaugeMetricFamily(f"conveyor_queue_{suffix}", doc, labels=["queue"])
        for s in stats:
            family.add_metric([s.name], float(getattr(s, attr)))
        families.append(family)
    age = GaugeMetricFamily(
        "conveyor_queue_oldest_waiting_age_seconds",
        "Age of the oldest job not yet delivered to a worker (absent: none waits).",
        labels=["queue"],
    )
    for s in stats:
        if s.oldest_waiting_age_seconds is not None:
            age.add_metric([s.name], s.oldest_waiting_age_seconds)
    families.append(age)
    return families
