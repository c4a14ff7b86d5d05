"""`api_handlers`: the API validates the payloads of typed handlers on job creation."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import httpx
import pytest

from conveyor.api.app import create_app
from conveyor.config import Settings, resolve
from conveyor.errors import ConfigError
from tests.api.conftest import app_client, assert_problem, error_fields, make_settings

pytestmark = pytest.mark.anyio

MODULE = "tests.api.typed_handlers"


@pytest.fixture
async def typed(redis_url: str, prefix: str) -> AsyncIterator[httpx.AsyncClient]:
    async with app_client(make_settings(redis_url, prefix, api_handlers=(MODULE,))) as c:
        yield c


async def test_a_typed_payload_that_does_not_fit_is_422_naming_the_field(
    typed: httpx.AsyncClient, key_count: Callable[[], Awaitable[int]]
) -> None:
    response = await typed.post(
        "/jobs", json={"type": "api-typed.report", "payload": {"pages": "many"}}
    )
    body = assert_problem(response, 422)
    assert body["errors"] == [
        {"field": "payload.month", "message": "Field required"},
        {
            "field": "payload.pages",
            "message": "Input should be a valid integer, unable to parse string as an integer",
        },
    ]
    response = await typed.post("/jobs", json={"type": "api-typed.resize", "payload": [1]})
    assert error_fields(assert_problem(response, 422)) == {"payload"}
    assert await key_count() == 0


async def test_payload_errors_come_with_the_other_field_errors(
    typed: httpx.AsyncClient, key_count: Callable[[], Awaitable[int]]
) -> None:
    response = await typed.post(
        "/jobs",
        json={"type": "api-typed.report", "payload": {}, "max_attempts": 0},
        headers={"Idempotency-Key": "bad key"},
    )
    fields = error_fields(assert_problem(response, 422))
    assert fields == {"payload.month", "max_attempts", "Idempotency-Key"}
    assert await key_count() == 0


async def test_a_payload_that_fits_is_created_as_sent(typed: httpx.AsyncClient) -> None:
    payload = {"month": "2026-11", "extra": "kept"}
    response = await typed.post("/jobs", json={"type": "api-typed.report", "payload": payload})
    assert response.status_code == 201, response.text
    assert response.json()["payload"] == payload
    for job in (
        {"type": "api-typed.resize", "payload": {"width": 3}},
        {"type": "api-typed.plain", "payload": ["anything"]},  # a plain handler: unchecked
        {"type": "not.registered", "payload": {"month": 1}},  # no handler known here
    ):
        response = await typed.post("/jobs", json=job)
        assert response.status_code == 201, response.text


async def test_a_batch_with_one_invalid_typed_payload_writes_nothing(
    typed: httpx.AsyncClient, key_count: Callable[[], Awaitable[int]]
) -> None:
    jobs = [
        {"type": "api-typed.report", "payload": {"month": "2026-11"}},
        {"type": "api-typed.plain", "payload": None},
        {"type": "api-typed.resize", "payload": {"width": 2}},
        {"type": "api-typed.report", "payload": {"month": 11}},
        {"type": "api-typed.resize", "payload": {}},
    ]
    response = await typed.post("/jobs/batch", json={"jobs": jobs})
    body = assert_problem(response, 422)
    assert error_fields(body) == {"jobs/3/payload.month", "jobs/4/payload.width"}
    assert await key_count() == 0
    response = await typed.post("/jobs/batch", json={"jobs": jobs[:3]})
    assert response.status_code == 201, response.text


async def test_without_api_handlers_payloads_are_not_checked(redis_url: str, prefix: str) -> None:
    async with app_client(make_settings(redis_url, prefix)) as c:
        response = await c.post("/jobs", json={"type": "api-typed.report", "payload": 42})
    assert response.status_code == 201, response.text


def test_a_module_that_cannot_be_imported_is_a_config_error(redis_url: str, prefix: str) -> None:
    settings = make_settings(redis_url, prefix, api_handlers=("tests.api.no_such_module",))
    with pytest.raises(ConfigError) as caught:
        create_app(settings)
    [problem] = caught.value.problems
    assert problem.startswith("CONVEYOR_API_HANDLERS: cannot import 'tests.api.no_such_module'")


def test_the_setting_is_a_list_of_module_paths() -> None:
    settings = resolve({}, {"CONVEYOR_API_HANDLERS": "myapp.jobs, other"}, {})
    assert settings.api_handlers == ("myapp.jobs", "other")
    assert resolve({"api_handlers": ["a.b"]}, {}, {}).api_handlers == ("a.b",)
    assert Settings().api_handlers == ()
    with pytest.raises(ConfigError) as caught:
        resolve({}, {"CONVEYOR_API_HANDLERS": "not a module"}, {})
    [problem] = caught.value.problems
    assert problem.startswith("CONVEYOR_API_HANDLERS:")
