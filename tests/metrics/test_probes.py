"""The probe server of workers and schedulers: /metrics, /healthz (a stuck event loop
fails it), /readyz (follows Redis)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client import CollectorRegistry
from redis.asyncio import Redis

from conveyor.metrics import SchedulerMetrics, WorkerMetrics
from conveyor.store.keys import Keys
from conveyor.worker.probes import (
    MAX_HANDLER_THREADS,
    SOCKET_TIMEOUT_SECONDS,
    Health,
    ProbeServer,
)
from conveyor.worker.scheduler import Scheduler
from tests.helpers.redis_server import RedisServer
from tests.helpers.wait import eventually_async
from tests.metrics.support import value

pytestmark = pytest.mark.anyio


async def get(url: str) -> httpx.Response:
    return await asyncio.to_thread(httpx.get, url, timeout=5)


def test_health_rules() -> None:
    now = [100.0]
    health = Health(ready_window=3.0, stall_after=5.0, clock=lambda: now[0])
    assert health.alive()
    assert not health.ready()  # no Redis round trip yet
    health.redis_succeeded()
    assert health.ready()
    now[0] += 3.5
    assert not health.ready()  # too long ago
    now[0] += 2.0
    assert not health.alive()  # the loop has not stamped for 5.5 s
    health.redis_succeeded()
    health.redis_failed()
    assert not health.ready()  # the last round trip failed


async def test_healthz_fails_while_the_loop_is_blocked() -> None:
    metrics = WorkerMetrics(CollectorRegistry())
    metrics.job("default", "t").completed.inc()
    health = Health(ready_window=5.0, stall_after=0.3, tick=0.02)
    server = ProbeServer(metrics.registry, health, port=0, host="127.0.0.1")
    server.start()
    ticker = asyncio.create_task(health.run())
    base = f"http://127.0.0.1:{server.port}"
    try:
        response = await get(f"{base}/healthz")
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
        scraped = await get(f"{base}/metrics")
        assert scraped.status_code == 200
        assert scraped.headers["content-type"].startswith("text/plain")
        assert value(scraped.text, "conveyor_jobs_completed_total", queue="default",
                     type="t") == 1  # fmt: skip
        assert (await get(f"{base}/nothing")).status_code == 404

        seen: list[int] = []

        def probe_later() -> None:
            time.sleep(0.6)
            seen.append(httpx.get(f"{base}/healthz", timeout=5).status_code)

        prober = threading.Thread(target=probe_later)
        prober.start()
        time.sleep(1.0)  # noqa: ASYNC251 - blocks the event loop on purpose: no stamps
        prober.join(5)
        assert seen == [503]

        async def healthy_again() -> bool:
            return (await get(f"{base}/healthz")).status_code == 200

        await eventually_async(healthy_again, timeout=5, what="healthz 200 again")
    finally:
        ticker.cancel()
        await asyncio.gather(ticker, return_exceptions=True)
        await asyncio.to_thread(server.stop)


async def test_readyz_follows_redis(tmp_path: Path, prefix: str) -> None:
    private = RedisServer(tmp_path / "redis")
    private.start()
    redis = Redis(port=private.port, socket_timeout=0.5, socket_connect_timeout=0.5)
    health = Health(ready_window=3.0)
    scheduler = Scheduler(
        redis, Keys(prefix), result_ttl_seconds=600, health=health,
        metrics=SchedulerMetrics(CollectorRegistry()),
    )  # fmt: skip
    server = ProbeServer(scheduler.metrics.registry, health, port=0, host="127.0.0.1")
    server.start()
    task = asyncio.create_task(scheduler.run())
    url = f"http://127.0.0.1:{server.port}/readyz"

    async def status_is(code: int) -> bool:
        return (await get(url)).status_code == code

    try:
        await eventually_async(lambda: status_is(200), timeout=10, what="ready")
        private.stop()
        await eventually_async(lambda: status_is(503), timeout=10, what="unready")
        assert (await get(url)).json() == {"status": "unavailable"}
        private.start()
        await eventually_async(lambda: status_is(200), timeout=15, what="ready again")
    finally:
        scheduler.request_stop()
        await asyncio.wait_for(task, 15)
        await redis.aclose()
        await asyncio.to_thread(server.stop)
        private.stop()


def test_idle_connections_hold_bounded_threads_and_time_out() -> None:
    """50 connections that never send a byte: at most `max_threads` handler threads, the
    rest closed at once; once the idle ones time out, /healthz answers again."""
    health = Health(ready_window=5.0)
    server = ProbeServer(
        CollectorRegistry(), health, port=0, host="127.0.0.1", max_threads=4, socket_timeout=0.5
    )
    server.start()
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(50)]
    try:
        deadline = time.monotonic() + 5
        while server.refused < 46 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.refused == 46
        assert threading.active_count() <= before + 4
        refused = 0
        for sock in idle:
            sock.settimeout(3)
            assert sock.recv(1) == b""  # closed unanswered at once, or when its timeout ran out
            refused += 1
        assert refused == 50
        deadline = time.monotonic() + 5
        while threading.active_count() > before and time.monotonic() < deadline:
            time.sleep(0.01)
        assert threading.active_count() <= before  # every handler thread ended
        response = httpx.get(f"http://127.0.0.1:{server.port}/healthz", timeout=5)
        assert (response.status_code, response.json()) == (200, {"status": "ok"})
    finally:
        for sock in idle:
            sock.close()
        server.stop()


def test_the_default_bounds() -> None:
    health = Health(ready_window=5.0)
    server = ProbeServer(CollectorRegistry(), health, port=0, host="127.0.0.1")
    server.start()
    before = threading.active_count()
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(50)]
    try:
        deadline = time.monotonic() + 5
        while server.refused < 50 - MAX_HANDLER_THREADS and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.refused == 50 - MAX_HANDLER_THREADS
        assert threading.active_count() <= before + MAX_HANDLER_THREADS
        started = time.monotonic()
        for sock in idle:
            sock.settimeout(SOCKET_TIMEOUT_SECONDS + 5)
            assert sock.recv(1) == b""
        assert time.monotonic() - started <= SOCKET_TIMEOUT_SECONDS + 2
    finally:
        for sock in idle:
            sock.close()
        server.stop()
