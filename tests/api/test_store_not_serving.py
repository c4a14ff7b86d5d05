"""The problem mapping of Redis errors: "not serving now" is 503 with Retry-After (the
same answer as a lost connection), a bug is a 500; neither leaks the exception text."""

from __future__ import annotations

import httpx
import pytest
from redis import exceptions as e
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from conveyor.api.problems import PROBLEM_JSON, RETRY_AFTER_SECONDS, exception_handlers
from tests.unit.test_redis_errors import BUGS, NOT_SERVING

pytestmark = pytest.mark.anyio


async def answer_to(exc: BaseException) -> httpx.Response:
    """What the API's handler table answers to a route raising `exc`."""

    async def boom(_: Request) -> Response:
        raise exc

    app = Starlette(routes=[Route("/boom", boom)], exception_handlers=exception_handlers())
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
        return await client.get("/boom")


@pytest.mark.parametrize("exc", NOT_SERVING, ids=lambda x: f"{type(x).__name__}:{x}")
async def test_not_serving_is_503_with_retry_after(exc: BaseException) -> None:
    response = await answer_to(exc)
    assert response.status_code == 503
    assert response.headers["content-type"] == PROBLEM_JSON
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert response.json()["type"] == "urn:conveyor:problem:store-unavailable"
    assert str(exc) not in response.text


@pytest.mark.parametrize(
    "exc", [x for x in BUGS if isinstance(x, e.RedisError | e.RedisClusterException)]
)
async def test_a_redis_bug_is_500(exc: BaseException) -> None:
    response = await answer_to(exc)
    assert response.status_code == 500
    assert response.headers["content-type"] == PROBLEM_JSON
    assert "retry-after" not in response.headers
    assert str(exc) not in response.text
