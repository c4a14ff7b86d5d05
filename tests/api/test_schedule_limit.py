"""The cap on the number of schedules: a new one beyond it is a 409 with nothing written;
the existing ones can still be replaced."""

from __future__ import annotations

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.config import Settings
from conveyor.store.keys import Keys
from tests.api.conftest import assert_problem, make_settings

pytestmark = pytest.mark.anyio
EVERY = {"type": "t", "every_seconds": 60}


@pytest.fixture
def settings(redis_url: str, prefix: str) -> Settings:
    return make_settings(redis_url, prefix, max_schedules=2)


async def test_a_new_schedule_beyond_the_cap_is_refused(
    client: httpx.AsyncClient, r: Redis, keys: Keys
) -> None:
    for name in ("a", "b"):
        assert (await client.put(f"/schedules/{name}", json=EVERY)).status_code == 201
    problem = assert_problem(await client.put("/schedules/c", json=EVERY), 409)
    assert problem["type"] == "urn:conveyor:problem:schedule-limit"
    assert "CONVEYOR_MAX_SCHEDULES" in str(problem["detail"])
    assert not await r.exists(keys.schedule("c"))
    assert (await client.put("/schedules/b", json={**EVERY, "every_seconds": 5})).status_code == 200
