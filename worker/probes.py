"""Probes of the worker and scheduler processes: ``/metrics``, ``/healthz``, ``/readyz``.

When ``metrics_port`` is set (0, the default, means no server), a small HTTP server runs in
a daemon thread, so it answers even while the event loop is busy, which is exactly what
the liveness probe must be able to tell:

- ``GET /metrics``: the process's registry in the Prometheus text format;
- ``GET /healthz``: 200 while the event loop is responsive. A tiny task stamps the time
  every `TICK_SECONDS`; when the stamp is older than `STALL_SECONDS` (a handler blocking
  the loop, a deadlock) the answer is 503 and the orchestrator restarts the process;
- ``GET /readyz``: 200 when the process's last Redis round trip succeeded, within the last
  few heartbeats; else 503.

Its cost is bounded whatever the clients do: at most `MAX_HANDLER_THREADS` connections are
served at once (one thread each; a connection beyond them is closed at once, unanswered),
and a connection that sends nothing for `SOCKET_TIMEOUT_SECONDS` is closed, freeing its
thread; each connection serves one request (HTTP/1.0).

The server listens on every interface (``0.0.0.0``): a probe of Kubernetes or a Prometheus
scrape comes from outside the pod, so a loopback-only server would be useless there. It
serves nothing but these three read-only, credential-free routes; keep the port off any
public network (the same as the API's own ``/metrics``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CollectorRegistry

from conveyor.config import Settings
from conveyor.metrics import CONTENT_TYPE_LATEST, render

log = logging.getLogger("conveyor.probes")

PROBE_HOST = "0.0.0.0"  # noqa: S104 - probes and scrapes come from outside the pod
TICK_SECONDS = 1.0
STALL_SECONDS = 5.0
READY_HEARTBEATS = 3
MAX_HANDLER_THREADS = 16
SOCKET_TIMEOUT_SECONDS = 5.0


class Health:
    """What the probes report, updated by the process and read from the server's thread
    (plain attribute writes and reads: no lock needed)."""

    def __init__(
        self,
        ready_window: float,
        *,
        stall_after: float = STALL_SECONDS,
        tick: float = TICK_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ready_window = ready_window
        self.stall_after = stall_after
        self.tick = tick
        self.clock = clock
        self.loop_seen = clock()
        self.redis_ok = False
        self.redis_ok_at = float("-inf")

    def redis_succeeded(self) -> None:
        self.redis_ok_at = self.clock()
        self.redis_ok = True

    def redis_failed(self) -> None:
        self.redis_ok = False

    def alive(self) -> bool:
        return self.clock() - self.loop_seen <= self.stall_after

    def ready(self) -> bool:
        return self.redis_ok and self.clock() - self.redis_ok_at <= self.ready_window

    async def run(self) -> None:
        """Stamp the time every `tick` seconds: the loop's heartbeat for `/healthz`."""
        while True:
            self.loop_seen = self.clock()
            await asyncio.sleep(self.tick)


def _handler(
    registry: CollectorRegistry, health: Health, socket_timeout: float
) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "conveyor-probes"
        timeout = socket_timeout  # StreamRequestHandler sets it on the connection

        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, render(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                ok = health.alive()
                self._json(200 if ok else 503, "ok" if ok else "stalled")
            elif path == "/readyz":
                ok = health.ready()
                self._json(200 if ok else 503, "ready" if ok else "unavailable")
            else:
                self._json(404, "not found")

        def _json(self, status: int, word: str) -> None:
            body = json.dumps({"status": word}).encode()
            self._send(status, body, "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass  # scrapes and probes every few seconds: not worth a log line each

    return Handler


class _BoundedThreadingHTTPServer(ThreadingHTTPServer):
    """A `ThreadingHTTPServer` running at most `max_threads` handler threads: a connection
    that arrives while all are busy is closed at once instead of getting a thread more."""

    daemon_threads = True
    block_on_close = False
    # A backlog larger than the default 5, so a burst of connections is accepted (and the
    # ones beyond the threads closed) at once rather than left to the kernel's retries.
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], *,
                 max_threads: int) -> None:  # fmt: skip
        super().__init__(address, handler)
        self._slots = threading.BoundedSemaphore(max_threads)
        self.refused = 0

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        if not self._slots.acquire(blocking=False):
            self.refused += 1
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:  # the thread did not start: give its slot back
            self._slots.release()
            raise

    def process_request_thread(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._slots.release()


class ProbeServer:
    """The probe server on `host`:`port` (port 0: any free port, see `port` once
    started), serving from a daemon thread."""

    def __init__(
        self,
        registry: CollectorRegistry,
        health: Health,
        port: int,
        host: str = PROBE_HOST,
        *,
        max_threads: int = MAX_HANDLER_THREADS,
        socket_timeout: float = SOCKET_TIMEOUT_SECONDS,
    ) -> None:
        self._server = _BoundedThreadingHTTPServer(
            (host, port), _handler(registry, health, socket_timeout), max_threads=max_threads
        )
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.2},
            name="conveyor-probes",
            daemon=True,
        )

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def refused(self) -> int:
        """Connections closed unanswered because every handler thread was busy."""
        return self._server.refused

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        if self._thread.is_alive():
            self._server.shutdown()
            self._thread.join(5)
        self._server.server_close()


@asynccontextmanager
async def serving_probes(
    settings: Settings, registry: CollectorRegistry, health: Health
) -> AsyncIterator[ProbeServer | None]:
    """The probe server and the loop's heartbeat task for the duration of the block; nothing
    at all when ``metrics_port`` is 0."""
    if settings.metrics_port <= 0:
        yield None
        return
    server = ProbeServer(registry, health, settings.metrics_port)
    server.start()
    ticker = asyncio.create_task(health.run(), name="probe-ticker")
    log.info("probes listening", extra={"port": server.port})
    try:
        yield server
    finally:
        ticker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await ticker
        await asyncio.to_thread(server.stop)


def ready_window(settings: Settings, floor: float = 0.0) -> float:
    """How long a successful Redis round trip keeps a process ready: a few heartbeats."""
    return max(READY_HEARTBEATS * settings.heartbeat_seconds, floor)
