"""`conveyor api` as a real process: serves, and stops cleanly on SIGTERM and SIGINT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from conveyor.api.cli import api_command
from tests.helpers.redis_server import free_port
from tests.helpers.wait import eventually

RUN = "from api.cli import api_command; api_command(prog_name='conveyor api')"


def start_api(redis_url: str, prefix: str, port: int, log: Path) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env["CONVEYOR_API_AUTH"] = "none"
    args = [
        sys.executable, "-c", RUN,
        "--redis-url", redis_url, "--key-prefix", prefix,
        "--host", "127.0.0.1", "--port", str(port), "--log-format", "json",
    ]  # fmt: skip
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)


def ready(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serves_and_exits_0_on_signal(
    redis_url: str, prefix: str, tmp_path: Path, stop: signal.Signals
) -> None:
    port = free_port()
    log = tmp_path / "api.log"
    process = start_api(redis_url, prefix, port, log)
    try:
        eventually(lambda: ready(port) or process.poll() is not None, timeout=20, what="api up")
        assert process.poll() is None, log.read_text()
        response = httpx.post(
            f"http://127.0.0.1:{port}/jobs",
            json={"type": "noop"},
            headers={"X-Correlation-ID": "cli-test"},
            timeout=5,
        )
        assert response.status_code == 201
        assert response.headers["x-correlation-id"] == "cli-test"
        process.send_signal(stop)
        assert process.wait(15) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
    output = log.read_text()
    assert "Traceback" not in output
    assert "cli-test" in output  # the access log line carries the request's correlation id


def test_endless_chunked_body_gets_413_over_a_real_socket(
    redis_url: str, prefix: str, tmp_path: Path
) -> None:
    """The server answers 413 once the limit is passed, while the body is still open."""
    port = free_port()
    log = tmp_path / "api.log"
    process = start_api(redis_url, prefix, port, log)
    try:
        eventually(lambda: ready(port) or process.poll() is not None, timeout=20, what="api up")
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            sock.sendall(
                b"POST /jobs HTTP/1.1\r\nHost: api\r\nContent-Type: application/json\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n"
            )
            chunk = b"x" * 65536
            for _ in range(1024 * 1024 // len(chunk) + 64 * 1024 // len(chunk) + 2):
                sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            # No terminating chunk: the body never ends, the answer must come anyway.
            reply = sock.recv(65536)
        assert reply.startswith(b"HTTP/1.1 413 "), reply[:200]
        assert b"application/problem+json" in reply
        process.send_signal(signal.SIGTERM)
        assert process.wait(15) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)


def test_invalid_setting_exits_2() -> None:
    result = CliRunner().invoke(api_command, ["--redis-url", "http://nope", "--port", "80"])
    assert result.exit_code == 2


def test_port_out_of_range_is_a_usage_error() -> None:
    result = CliRunner().invoke(api_command, ["--port", "70000"])
    assert result.exit_code == 2
    assert "--port" in result.output
