"""Regression tests for API defects the contract run found, each reproduced directly."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from conveyor.api.app import create_app
from tests.api.conftest import make_settings
from tests.helpers.http import JSON

pytestmark = pytest.mark.anyio


@pytest.fixture
async def client(redis_url: str, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(make_settings(redis_url, prefix))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as c:
            yield c


@pytest.mark.parametrize("method", ["GET", "DELETE"])
async def test_other_methods_on_jobs_batch_are_405(client: httpx.AsyncClient, method: str) -> None:
    response = await client.request(method, "/jobs/batch", headers=JSON)
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/jobs", "/jobs/batch"])
async def test_an_integral_number_written_with_a_fraction_is_an_integer(
    client: httpx.AsyncClient, path: str
) -> None:
    job = {"type": "email.send", "max_attempts": 3.0}
    response = await client.post(path, json={"jobs": [job]} if path.endswith("batch") else job)
    assert response.status_code == 201, response.text
