"""The real `conveyor api` and `conveyor worker` processes, and their CPU time."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from conveyor_tools.bench.server import Target, free_port

_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE = os.sysconf("SC_PAGE_SIZE")


def conveyor() -> list[str]:
    script = Path(sys.executable).with_name("conveyor")
    return [str(script)] if script.exists() else [sys.executable, "-m", "conveyor.cli"]


def base_env(target: Target, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(
        {
            "CONVEYOR_REDIS_URL": target.url,
            "CONVEYOR_KEY_PREFIX": target.prefix,
            "CONVEYOR_LOG_LEVEL": "WARNING",
            "CONVEYOR_LOG_FORMAT": "json",
        }
    )
    env.update(extra)
    return env


def cpu_seconds(pid: int) -> float:
    """utime + stime of a live process, from /proc/<pid>/stat (0.0 once it is gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return 0.0
    fields = stat.rsplit(")", 1)[1].split()
    # after the command name: state is field 3, utime 14 and stime 15 (1-based)
    return (int(fields[11]) + int(fields[12])) / _TICKS


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process, from /proc/<pid>/statm (0 once it is gone)."""
    try:
        statm = Path(f"/proc/{pid}/statm").read_text()
    except OSError:
        return 0
    return int(statm.split()[1]) * _PAGE


@dataclass
class Child:
    popen: subprocess.Popen[bytes]

    @property
    def cpu(self) -> float:
        return cpu_seconds(self.popen.pid)

    @property
    def rss(self) -> int:
        return rss_bytes(self.popen.pid)

    def stop(self, timeout: float = 15.0) -> int:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.popen.kill()
            return self.popen.wait(10)


def start(role: str, env: dict[str, str], *args: str) -> Child:
    popen = subprocess.Popen(
        [*conveyor(), role, *args],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    return Child(popen)


def start_workers(
    target: Target, queue: str, count: int, concurrency: int, handlers: str = ""
) -> list[Child]:
    """`count` worker processes on `queue`; `handlers`: modules for CONVEYOR_HANDLERS."""
    env = base_env(
        target,
        CONVEYOR_QUEUES=queue,
        CONVEYOR_CONCURRENCY=str(concurrency),
        CONVEYOR_HANDLERS=handlers,
    )
    return [start("worker", env) for _ in range(count)]


def start_api(target: Target, timeout: float = 20.0) -> tuple[Child, str]:
    port = free_port()
    env = base_env(
        target,
        CONVEYOR_API_HOST="127.0.0.1",
        CONVEYOR_API_PORT=str(port),
        CONVEYOR_API_AUTH="none",  # a local benchmark's own API, on the loopback only
    )
    child = start("api", env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if child.popen.poll() is not None:
            break
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return child, url
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    child.stop()
    raise RuntimeError("conveyor api did not become ready")


def stop_all(children: list[Child]) -> None:
    for child in children:
        if child.popen.poll() is None:
            child.popen.send_signal(signal.SIGTERM)
    for child in children:
        child.stop()
