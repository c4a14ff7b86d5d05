"""Runs the real `conveyor` processes as subprocesses against a test redis-server."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from tests.helpers.http import open_unless_tokens
from tests.helpers.redis_server import free_port
from tests.helpers.wait import eventually

CONVEYOR = str(Path(sys.executable).with_name("conveyor"))


@dataclass
class Process:
    role: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    def signal(self, sig: int) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(sig)

    def kill(self) -> None:
        self.signal(signal.SIGKILL)
        self.popen.wait(10)

    def wait(self, timeout: float) -> int:
        return self.popen.wait(timeout)

    def wait_logged(self, msg: str, timeout: float = 15) -> dict[str, Any]:
        """The first log line with this message, once the process has written it."""

        def find() -> dict[str, Any] | None:
            return next((line for line in self.log_lines() if line.get("msg") == msg), None)

        return eventually(find, timeout=timeout, what=f"{self.role} logged {msg!r}")

    def log_lines(self) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except ValueError:
                out.append({"raw": line})
        return out


@dataclass
class System:
    """A private Conveyor deployment: env shared by every process it starts."""

    redis_url: str
    prefix: str
    workdir: Path
    env_overrides: dict[str, str] = field(default_factory=dict)
    processes: list[Process] = field(default_factory=list)
    api_port: int = 0
    token: str | None = None  # sent as a bearer token when the API requires one

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    @property
    def ledger(self) -> Path:
        return self.workdir / "ledger.jsonl"

    def env(self, **extra: str) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
        env.update(
            {
                "CONVEYOR_REDIS_URL": self.redis_url,
                "CONVEYOR_KEY_PREFIX": self.prefix,
                "CONVEYOR_HANDLERS": "tests.e2e.handlers",
                "CONVEYOR_TEST_LEDGER": str(self.ledger),
                "CONVEYOR_LOG_FORMAT": "json",
                "CONVEYOR_LEASE_SECONDS": "2",
                "CONVEYOR_HEARTBEAT_SECONDS": "0.5",
                "CONVEYOR_SHUTDOWN_TIMEOUT_SECONDS": "5",
                "CONVEYOR_RETRY_BASE_SECONDS": "0.05",
                "CONVEYOR_RETRY_MAX_SECONDS": "0.2",
                "PYTHONPATH": str(Path(__file__).resolve().parents[2]),
            }
        )
        env.update(self.env_overrides)
        env.update(extra)
        return open_unless_tokens(env)

    def start(self, role: str, *args: str, **env: str) -> Process:
        n = sum(1 for p in self.processes if p.role == role)
        log_path = self.workdir / f"{role}-{n}.log"
        with log_path.open("wb") as out:
            popen = subprocess.Popen(
                [CONVEYOR, role, *args], env=self.env(**env), stdout=out, stderr=subprocess.STDOUT
            )
        process = Process(role, popen, log_path)
        self.processes.append(process)
        return process

    def start_api(self, **env: str) -> Process:
        self.api_port = free_port()
        process = self.start("api", "--port", str(self.api_port), **env)
        eventually(self._api_ready, timeout=15, what="API ready")
        return process

    def _api_ready(self) -> bool:
        try:
            return httpx.get(f"{self.api}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.api_port}"

    def post_job(self, job_type: str, payload: Any = None, **fields: Any) -> dict[str, Any]:
        response = httpx.post(
            f"{self.api}/jobs",
            json={"type": job_type, "payload": payload, **fields},
            headers=self.headers,
            timeout=10,
        )
        assert response.status_code == 201, response.text
        body: dict[str, Any] = response.json()
        return body

    def get_job(self, job_id: str) -> dict[str, Any]:
        response = httpx.get(f"{self.api}/jobs/{job_id}", headers=self.headers, timeout=10)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    def wait_status(self, job_id: str, *statuses: str, timeout: float = 20) -> dict[str, Any]:
        def check() -> dict[str, Any] | None:
            job = self.get_job(job_id)
            return job if job["status"] in statuses else None

        return eventually(check, timeout=timeout, what=f"job {job_id} in {statuses}")

    def ledger_lines(self) -> list[dict[str, Any]]:
        if not self.ledger.exists():
            return []
        return [json.loads(line) for line in self.ledger.read_text().splitlines() if line]

    def stop_all(self) -> None:
        for p in self.processes:
            p.signal(signal.SIGTERM)
        deadline = time.monotonic() + 15
        for p in self.processes:
            try:
                p.wait(max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                p.kill()
