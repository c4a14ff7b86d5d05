"""conveyor.testing runs on fakeredis alone: these tests may not start a redis-server.

The shared fixtures that would start one are replaced here by fixtures that fail.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def redis_server() -> None:
    pytest.fail("tests/testing run without a Redis server; do not use the redis fixtures")


@pytest.fixture
def r() -> None:
    pytest.fail("tests/testing run without a Redis server; do not use the redis fixtures")
