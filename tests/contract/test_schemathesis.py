"""The API against its own OpenAPI document: schemathesis generates requests from the
document (valid and invalid ones), sends them to the app in-process, backed by the private
redis-server, and checks every answer: no server error, a documented status code, content
type and headers, a body matching the documented schema, valid data accepted, invalid data
refused, authentication enforced."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.core import NOT_SET
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance
from starlette.applications import Starlette

from conveyor.api.app import create_app
from conveyor.config import Settings
from tests.api.conftest import make_settings

TOKEN = "contract-test-token-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
LIMITS: dict[str, object] = {"api_tokens": (TOKEN,), "max_batch_jobs": 20}


def settings_for(redis_url: str, prefix: str) -> Settings:
    return make_settings(redis_url, prefix, **LIMITS)


# The document is read from an app at collection time; it does not depend on where Redis is,
# and that app never reaches Redis. The requests go to `api_app`, built per test.
schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(settings_for("redis://127.0.0.1:1/0", "unused")),
    headers=AUTH,
)


@pytest.fixture
def api_app(redis_url: str, prefix: str) -> Iterator[Starlette]:
    """The app under test. Schemathesis runs its lifespan (the Redis client) on its own event
    loop with the first request; it is shut down here, while the redis-server is still up."""
    yield create_app(settings_for(redis_url, prefix))
    asgi.shutdown_lifespans()


def canonical_numbers(value: Any) -> Any:
    """`value` with every integral float written as an integer (30.0 as 30).

    JSON Schema counts 1e272 as an integer (beyond the 64 bits a payload integer may have),
    but the API keeps a number written with an exponent as a float, which any payload may
    hold. Sent canonically, a payload number the document refuses is refused by the API
    too, whichever way it was generated."""
    if isinstance(value, list):
        return [canonical_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: canonical_numbers(item) for key, item in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def excluded_checks(case: schemathesis.Case[Any]) -> list[Any]:
    """Whether a cron expression or a time zone name is valid is beyond JSON Schema (field
    ranges, day 31 of February, the IANA database): a schedule the document allows may be
    refused (422 naming the field), so valid data is not required to be accepted there.
    Invalid data must still be refused."""
    if case.operation.path == "/schedules/{name}" and case.method.upper() == "PUT":
        return [positive_data_acceptance]
    return []


@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_to_its_document(case: schemathesis.Case[Any], api_app: Starlette) -> None:
    if case.operation.path.startswith("/jobs") and case.body is not NOT_SET:
        case.body = canonical_numbers(case.body)
    case.call_and_validate(headers=AUTH, app=api_app, excluded_checks=excluded_checks(case))


# The same API with no token configured: its document declares no security, so schemathesis
# does not expect invalid credentials to be refused.
open_schema = schemathesis.openapi.from_asgi(
    "/openapi.json",
    create_app(make_settings("redis://127.0.0.1:1/0", "unused", max_batch_jobs=20)),
)


@pytest.fixture
def open_api_app(redis_url: str, prefix: str) -> Iterator[Starlette]:
    yield create_app(make_settings(redis_url, prefix, max_batch_jobs=20))
    asgi.shutdown_lifespans()


@open_schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_an_open_api_conforms_to_its_document(
    case: schemathesis.Case[Any], open_api_app: Starlette
) -> None:
    if case.operation.path.startswith("/jobs") and case.body is not NOT_SET:
        case.body = canonical_numbers(case.body)
    case.call_and_validate(app=open_api_app, excluded_checks=excluded_checks(case))
