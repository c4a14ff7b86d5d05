"""`conveyor api` as a real process against slow clients: connections that send their
headers too slowly (or nothing) are closed after ``api_header_timeout_seconds``, idle
keep-alive connections after ``api_keepalive_timeout_seconds``, and beyond
``api_limit_concurrency`` connections a request is answered 503 at once."""

from __future__ import annotations

import os
import selectors
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.helpers.redis_server import free_port
from tests.helpers.wait import eventually

RUN = "from api.cli import api_command; api_command(prog_name='conveyor api')"
HEADER_TIMEOUT = 1.0
PARTIAL = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: "  # never finished
FULL = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"


class Api:
    def __init__(self, port: int, process: subprocess.Popen[bytes], log: Path) -> None:
        self.port = port
        self.process = process
        self.log = log

    def connect(self) -> socket.socket:
        return socket.create_connection(("127.0.0.1", self.port), timeout=10)

    def healthz(self) -> int:
        return httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=5).status_code


def start_api(redis_url: str, prefix: str, tmp_path: Path, **settings: str) -> Api:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(
        CONVEYOR_REDIS_URL=redis_url,
        CONVEYOR_KEY_PREFIX=prefix,
        CONVEYOR_API_AUTH="none",
        CONVEYOR_API_HOST="127.0.0.1",
        CONVEYOR_API_PORT=str(port),
        CONVEYOR_LOG_FORMAT="json",
        CONVEYOR_API_HEADER_TIMEOUT_SECONDS=str(HEADER_TIMEOUT),
    )
    env.update({f"CONVEYOR_{name.upper()}": value for name, value in settings.items()})
    log = tmp_path / "api.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-c", RUN], stdout=out, stderr=subprocess.STDOUT, env=env
        )
    api = Api(port, process, log)

    def up() -> bool:
        if process.poll() is not None:
            return True
        try:
            return api.healthz() == 200
        except httpx.TransportError:
            return False

    eventually(up, timeout=20, what="api up")
    assert process.poll() is None, log.read_text()
    return api


@pytest.fixture
def api(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[Api]:
    with stopped(start_api(redis_url, prefix, tmp_path)) as served:
        yield served


@contextmanager
def stopped(api: Api) -> Iterator[Api]:
    """`api`, stopped when the block ends."""
    try:
        yield api
    finally:
        api.process.terminate()
        try:
            api.process.wait(15)
        except subprocess.TimeoutExpired:
            api.process.kill()
            api.process.wait(10)


def read_response(sock: socket.socket) -> bytes:
    """One whole response (headers and a Content-Length body) from `sock`."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(4096)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    while len(body) < length:
        body += sock.recv(4096)
    return data


def closed_by_server(sockets: list[socket.socket], timeout: float) -> float:
    """Wait until the server has closed every socket (EOF or reset); the seconds it took."""
    started = time.monotonic()
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ, sock)
    open_ = set(sockets)
    deadline = started + timeout
    while open_ and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=deadline - time.monotonic()):
            sock = key.data
            try:
                data = sock.recv(4096)
            except ConnectionResetError:
                data = b""
            assert data == b"", data  # no answer to headers never finished
            selector.unregister(sock)
            open_.discard(sock)
    selector.close()
    assert not open_, f"{len(open_)} of {len(sockets)} connections still open after {timeout}s"
    return time.monotonic() - started


def test_partial_headers_and_silent_connections_are_closed_after_the_timeout(api: Api) -> None:
    partial = [api.connect() for _ in range(300)]
    silent = [api.connect() for _ in range(100)]
    for sock in partial:
        sock.sendall(PARTIAL)
    try:
        assert api.healthz() == 200  # meanwhile, a normal request is served
        took = closed_by_server(partial + silent, timeout=HEADER_TIMEOUT + 5)
        assert took <= HEADER_TIMEOUT + 5
        assert api.healthz() == 200
    finally:
        for sock in partial + silent:
            sock.close()
    assert api.process.poll() is None
    assert "Traceback" not in api.log.read_text()


def test_headers_sent_slowly_but_in_time_are_served(api: Api) -> None:
    with api.connect() as sock:
        for piece in (FULL[:10], FULL[10:30], FULL[30:]):
            sock.sendall(piece)
            time.sleep(HEADER_TIMEOUT / 5)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")


def test_a_keep_alive_connection_gets_the_deadline_again_after_a_response(api: Api) -> None:
    """After a response the next request's headers have the same deadline: starting them
    (which stops uvicorn's keep-alive timer) does not hold the connection open."""
    with api.connect() as sock:
        sock.sendall(FULL)
        assert read_response(sock).startswith(b"HTTP/1.1 200 ")
        sock.sendall(PARTIAL)
        took = closed_by_server([sock], timeout=HEADER_TIMEOUT + 5)
    assert took <= HEADER_TIMEOUT + 5


def test_beyond_the_connection_limit_requests_get_503_until_connections_close(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    with stopped(start_api(redis_url, prefix, tmp_path, api_limit_concurrency="5")) as api:
        idle = [api.connect() for _ in range(10)]
        try:
            assert api.healthz() == 503  # uvicorn's own answer, without calling the app
            closed_by_server(idle, timeout=HEADER_TIMEOUT + 5)
            assert eventually(lambda: api.healthz() == 200, timeout=5, what="served again")
        finally:
            for sock in idle:
                sock.close()


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_timeout(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    served = start_api(
        redis_url,
        prefix,
        tmp_path,
        api_keepalive_timeout_seconds="0.5",
        api_header_timeout_seconds="30",
    )
    with stopped(served) as api:
        with api.connect() as sock:
            sock.sendall(FULL)
            assert read_response(sock).startswith(b"HTTP/1.1 200 ")
            took = closed_by_server([sock], timeout=5)
        assert took < 5


def test_the_protocol_hooks_exist_in_the_installed_uvicorn() -> None:
    """The deadline overrides uvicorn's own methods: a rename there must fail here, loudly,
    rather than leave the deadline silently unarmed."""
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

    from conveyor.api.slow_clients import header_deadline_protocol

    protocol = header_deadline_protocol(2.5)
    assert issubclass(protocol, HttpToolsProtocol)
    assert protocol.header_timeout == 2.5
    hooks = ("connection_made", "connection_lost", "on_headers_complete", "on_response_complete")
    for hook in hooks:
        assert hook in vars(HttpToolsProtocol), hook
    with pytest.raises(ValueError, match="> 0"):
        header_deadline_protocol(0)
