"""Typed payloads across the real processes: the API refuses a payload that does not fit
its handler's model, a typed task enqueues over HTTP, the worker hands the handler the
model, and a payload stored past every check fails for good."""

from __future__ import annotations

import httpx
import pytest

import conveyor
from tests.e2e.system import System
from tests.e2e.typed_handlers import BuildRequest, build

pytestmark = pytest.mark.e2e

MODULE = "tests.e2e.typed_handlers"


def test_typed_payloads_are_checked_by_the_api_and_loaded_by_the_worker(system: System) -> None:
    system.start_api(CONVEYOR_API_HANDLERS=MODULE)
    system.start("worker", CONVEYOR_HANDLERS=f"tests.e2e.handlers,{MODULE}")

    refused = httpx.post(
        f"{system.api}/jobs",
        json={"type": build.name, "payload": {"pages": 2}},
        timeout=10,
    )
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["payload.month"]

    with conveyor.SyncHttpClient(system.api) as http:
        job = build.enqueue_sync(http, BuildRequest(month="2026-11", pages=3))
    done = system.wait_status(job.id, "completed")
    assert done["result"] == {"kind": "BuildRequest", "month": "2026-11", "pages": 3}

    # Written straight to Redis under the plain type name: no check saw it.
    with conveyor.SyncClient.from_url(system.redis_url, key_prefix=system.prefix) as client:
        stored = client.enqueue(build.name, {"month": 11}, max_attempts=3)
    failed = system.wait_status(stored.id, "failed")
    assert failed["attempts"] == 1
    assert failed["last_error"] == (
        "PayloadRejected: the payload is not a valid BuildRequest: "
        "payload.month: Input should be a valid string"
    )
