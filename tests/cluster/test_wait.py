"""WAIT after enqueue: a create is confirmed only once enough replicas have the job.

Against a real primary with one replica (`redis-server --replicaof`): waiting for one
replica succeeds; waiting for two (there is only one) answers `NotReplicated` from the
store and the Python client, and 503 problem+json from the API, naming the jobs, which do
exist on the primary.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis

from conveyor.api.app import create_app
from conveyor.client import Client
from conveyor.errors import NotReplicated
from conveyor.store.keys import Keys
from conveyor.store.producer import ProducerStore
from tests.api.conftest import assert_problem, make_settings
from tests.cluster.servers import NO_SYNC_DELAY, wait_in_sync
from tests.helpers import seed
from tests.helpers.redis_server import RedisServer

pytestmark = [pytest.mark.cluster, pytest.mark.anyio]


@pytest.fixture(scope="module")
def primary(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """A primary whose one replica is in sync."""
    directory = tmp_path_factory.mktemp("wait")
    server = RedisServer(directory / "primary", extra=NO_SYNC_DELAY)
    server.start()
    replica = RedisServer(
        directory / "replica", extra=["--replicaof", "127.0.0.1", str(server.port)]
    )
    try:
        replica.start()
        wait_in_sync(server.port, replicas=1)
        yield server
    finally:
        replica.kill()
        server.kill()


@pytest.fixture
async def pr(primary: RedisServer) -> AsyncIterator[Redis]:
    client = Redis(port=primary.port, socket_timeout=5)
    yield client
    await client.aclose()


async def test_waiting_for_the_replica_there_is_confirms_the_create(pr: Redis, keys: Keys) -> None:
    store = ProducerStore(pr, keys, result_ttl_seconds=600, wait_replicas=1, wait_timeout_ms=2000)
    jobs = await store.enqueue([seed.spec("default"), seed.spec("other")])
    assert [await pr.exists(keys.queue(j.queue).job(j.id)) for j in jobs] == [1, 1]


async def test_too_few_replicas_is_not_replicated_and_the_jobs_exist(pr: Redis, keys: Keys) -> None:
    store = ProducerStore(pr, keys, result_ttl_seconds=600, wait_replicas=2, wait_timeout_ms=50)
    specs = [seed.spec("default"), seed.spec("default")]
    with pytest.raises(NotReplicated) as caught:
        await store.enqueue(specs)
    assert caught.value.job_ids == [s.id for s in specs]
    assert (caught.value.acknowledged, caught.value.required) == (1, 2)
    assert await store.get(specs[0].id)


async def test_a_script_reloaded_after_noscript_is_waited_for_too(pr: Redis, keys: Keys) -> None:
    await pr.script_flush()
    store = ProducerStore(pr, keys, result_ttl_seconds=600, wait_replicas=1, wait_timeout_ms=2000)
    [job] = await store.enqueue([seed.spec("default")])
    assert await store.get(job.id)


async def test_the_python_client_raises_not_replicated(primary: RedisServer, prefix: str) -> None:
    url = f"redis://127.0.0.1:{primary.port}/0"
    async with Client.from_url(
        url, key_prefix=prefix, wait_replicas=2, wait_timeout_seconds=0.05
    ) as client:
        with pytest.raises(NotReplicated):
            await client.enqueue("echo", 1)
    async with Client.from_url(url, key_prefix=prefix, wait_replicas=1) as client:
        job = await client.enqueue("echo", 2)
        assert (await client.get(job.id)).payload == 2


async def test_the_api_answers_503_when_too_few_replicas_confirm(
    primary: RedisServer, prefix: str, tmp_path: Path
) -> None:
    url = f"redis://127.0.0.1:{primary.port}/0"
    settings = make_settings(url, prefix, redis_wait_replicas=2, redis_wait_timeout_seconds=0.05)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c,
    ):
        response = await c.post("/jobs", json={"type": "echo"})
        body: dict[str, Any] = assert_problem(response, 503)
        assert body["type"].endswith("not-replicated")
        assert body["replicas_acknowledged"] == 1
        assert response.headers["Retry-After"]
        [job_id] = body["job_ids"]
        assert (await c.get(f"/jobs/{job_id}")).status_code == 200  # it may exist: it does

        batch = await c.post("/jobs/batch", json={"jobs": [{"type": "echo"}] * 3})
        ids: Any = assert_problem(batch, 503)["job_ids"]
        assert len(ids) == 3

    settings = make_settings(url, prefix, redis_wait_replicas=1, redis_wait_timeout_seconds=0.5)
    app = create_app(settings)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://api") as c,
    ):
        assert (await c.post("/jobs", json={"type": "echo"})).status_code == 201
