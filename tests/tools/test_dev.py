"""`conveyor dev` (what `make run` starts): the whole system, with a private Redis."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.e2e.system import CONVEYOR
from tests.helpers.redis_server import free_port
from tests.helpers.wait import eventually

pytestmark = pytest.mark.e2e


def _env(redis_port: int, api_port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CONVEYOR_")}
    env.update(
        CONVEYOR_REDIS_URL=f"redis://127.0.0.1:{redis_port}/0",
        CONVEYOR_API_PORT=str(api_port),
        CONVEYOR_KEY_PREFIX="devtest",
        **extra,
    )
    return env


def test_dev_starts_private_redis_and_the_whole_system(tmp_path: Path) -> None:
    redis_port, api_port = free_port(), free_port()
    dev = subprocess.Popen(
        [CONVEYOR, "dev"],
        cwd=tmp_path,
        env=_env(redis_port, api_port),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    api = f"http://127.0.0.1:{api_port}"
    try:

        def ready() -> bool:
            try:
                return httpx.get(f"{api}/readyz", timeout=1).status_code == 200
            except httpx.HTTPError:
                return False

        eventually(ready, timeout=20, what="dev API ready")
        created = httpx.post(f"{api}/jobs", json={"type": "echo", "payload": [1, 2]}, timeout=5)
        assert created.status_code == 201
        job_id = created.json()["id"]

        def done() -> bool:
            job = httpx.get(f"{api}/jobs/{job_id}", timeout=5).json()
            return bool(job["status"] == "completed" and job["result"] == [1, 2])

        eventually(done, timeout=15, what="the job completed")
        assert (tmp_path / ".conveyor" / "redis" / "appendonlydir").is_dir()  # AOF on
    finally:
        dev.send_signal(signal.SIGINT)
        output = dev.communicate(timeout=30)[0].decode()
    assert dev.returncode == 0, output
    assert "starting one in .conveyor/redis" in output
    # No token configured: the API runs open, and both `conveyor dev` and the API say so.
    assert "CONVEYOR_API_AUTH=none" in output
    assert "open to anyone who reaches it" in output
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{api}/healthz", timeout=1)


def test_dev_explains_how_to_install_redis_when_it_is_missing(tmp_path: Path) -> None:
    env = _env(free_port(), free_port(), PATH=str(tmp_path))  # no redis-server on PATH
    result = subprocess.run(
        [CONVEYOR, "dev"], cwd=tmp_path, env=env, capture_output=True, timeout=30
    )
    assert result.returncode != 0
    assert b"apt-get install redis-server" in result.stderr
