"""The attacks of the security review, each against real `conveyor api` processes.

Every test starts its own API (and, where jobs must run, a worker) on a free port against
the session's private redis-server, under its own key prefix; the API is closed (a full and
a read token) unless the test is about the open mode.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.system import System


@pytest.fixture
def full_token() -> str:
    return "full-" + secrets.token_hex(16)


@pytest.fixture
def read_token() -> str:
    return "read-" + secrets.token_hex(16)


@pytest.fixture
def closed(
    redis_url: str, prefix: str, tmp_path: Path, full_token: str, read_token: str
) -> Iterator[System]:
    """A deployment whose API needs tokens (the default), not yet started."""
    deployment = System(
        redis_url,
        prefix,
        tmp_path,
        env_overrides={
            "CONVEYOR_API_AUTH": "token",
            "CONVEYOR_API_TOKENS": full_token,
            "CONVEYOR_API_READ_TOKENS": read_token,
        },
        token=full_token,
    )
    yield deployment
    deployment.stop_all()


@pytest.fixture
def open_api(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[System]:
    """A deployment whose API is open (`CONVEYOR_API_AUTH=none`), not yet started."""
    deployment = System(redis_url, prefix, tmp_path, env_overrides={"CONVEYOR_API_AUTH": "none"})
    yield deployment
    deployment.stop_all()
