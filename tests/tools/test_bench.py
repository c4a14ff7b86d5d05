"""`conveyor bench --quick --json` end to end: every figure is there, every job ran once."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("redis-server") is None, reason="needs redis-server"),
]

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    done = subprocess.run(
        [CONVEYOR, "bench", "--quick", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def _positive(section: dict[str, Any], *names: str) -> None:
    for name in names:
        value = section[name]
        assert isinstance(value, (int, float)), name
        assert value > 0, (name, value)


def test_enqueue_rates(report: dict[str, Any]) -> None:
    for kind in ("http_single", "http_batch", "client_enqueue_many"):
        _positive(report["enqueue"][kind], "jobs", "seconds", "per_second")
    _positive(report["enqueue"]["http_single"], "api_cpu_ms_per_request")


def test_drain_rates(report: dict[str, Any]) -> None:
    assert set(report["drain"]) == {"1_worker", "2_workers"}
    for run in report["drain"].values():
        _positive(run, "workers", "jobs", "wall_seconds", "per_second", "steady_per_second")
        rss = run["worker_rss_mib"]
        _positive(rss, "after_startup", "peak", "end")
        assert rss["peak"] >= max(rss["after_startup"], rss["end"])


def test_latency(report: dict[str, Any]) -> None:
    latency = report["latency"]
    _positive(latency, "offered_per_second", "achieved_per_second", "jobs")
    for name in ("pickup_ms", "complete_ms"):
        figures = latency[name]
        assert set(figures) == {"p50", "p95", "p99", "max"}
        assert figures["p50"] <= figures["p95"] <= figures["p99"] <= figures["max"]
    # sent -> handler started on the host clock in microseconds: never 0, never negative.
    assert latency["pickup_ms"]["p50"] > 0
    # created -> finished in whole Redis milliseconds: a job may finish in the same one.
    assert latency["complete_ms"]["p50"] >= 0
    assert latency["complete_ms"]["max"] > 0


def test_cost(report: dict[str, Any]) -> None:
    cost = report["cost"]
    _positive(
        cost,
        "worker_cpu_seconds_per_1000_jobs",
        "redis_cpu_seconds_per_1000_jobs",
        "redis_commands_per_job",
        "redis_commands_per_job_enqueue",
        "redis_commands_per_job_drain",
        "redis_memory_bytes_per_waiting_job",
        "memory_jobs",
    )
    assert cost["redis_commands_per_job_by_command"]


def test_every_job_completed_once(report: dict[str, Any]) -> None:
    verification = report["verification"]
    assert verification["ok"], verification["problems"]
    assert verification["problems"] == []
    s = report["settings"]
    expected = (s["http_jobs"] + s["batch_jobs"] + s["client_jobs"] + 2 * s["drain_jobs"]) + report[
        "latency"
    ]["jobs"]
    assert verification["jobs"] == expected


def test_context_is_recorded(report: dict[str, Any]) -> None:
    assert report["profile"] == "quick"
    assert set(report["versions"]) == {"python", "redis_server", "conveyor"}
    assert all(report["versions"].values())
    assert report["machine"]["cpus"] > 0
    assert len(report["machine"]["load_average"]) == 3


@pytest.fixture(scope="module")
def growth() -> dict[str, Any]:
    done = subprocess.run(
        [CONVEYOR, "bench", "--growth", "40,400", "--json"],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    body: dict[str, Any] = json.loads(done.stdout)
    return body


def test_growth_study_measures_every_size(growth: dict[str, Any]) -> None:
    assert growth["profile"] == "growth"
    assert [step["jobs"] for step in growth["growth"]] == [40, 400]
    for step in growth["growth"]:
        _positive(
            step, "enqueue_per_second", "redis_memory_bytes_per_waiting_job", "drain_per_second"
        )
        # CPU time is counted in clock ticks (10 ms): a few hundred jobs may take none.
        assert step["worker_cpu_seconds_per_1000_jobs"] >= 0
        for page in ("get_jobs_first_page_ms", "get_jobs_status_page_ms"):
            _positive(step[page], "p50", "p99", "max")
        _positive(step["worker_rss_mib"], "after_startup", "peak", "end")
        assert step["problems"] == []
    # 40 jobs fit in one page of 50: no next page to time; 400 have one.
    assert growth["growth"][0]["get_jobs_next_page_ms"]["p50"] == 0
    assert growth["growth"][1]["get_jobs_next_page_ms"]["p50"] > 0
    assert growth["verification"] == {"jobs": 440, "ok": True, "problems": []}


def test_growth_sizes_are_checked() -> None:
    done = subprocess.run(
        [CONVEYOR, "bench", "--growth", "1000,lots"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 2
    assert "--growth" in done.stderr
