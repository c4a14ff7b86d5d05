from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.system import System


@pytest.fixture
def system(redis_url: str, prefix: str, tmp_path: Path) -> Iterator[System]:
    deployment = System(redis_url, prefix, tmp_path)
    yield deployment
    deployment.stop_all()
