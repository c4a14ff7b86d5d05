"""Typed tasks used wrongly: mypy must report, on each wrong line, the error quoted by the
"expect" comment just above it (tests/typing/test_mypy_examples.py checks it). Excluded
from the project's own mypy run."""

from __future__ import annotations

from dataclasses import dataclass

import pydantic

import conveyor


class BuildRequest(pydantic.BaseModel):
    month: str


@dataclass
class Resize:
    width: int


@conveyor.handler("reports.build")
async def build(ctx: conveyor.JobContext, payload: BuildRequest) -> None:
    return None


@conveyor.handler("images.resize")
def resize(ctx: conveyor.JobContext, payload: Resize) -> int:
    return payload.width


async def produce(client: conveyor.Client, blocking: conveyor.SyncClient) -> None:
    # expect: Argument 2 to "enqueue" of "Task" has incompatible type "int"; expected "BuildRequest"
    await build.enqueue(client, 42)
    # expect: Argument 2 to "enqueue" of "Task" has incompatible type "dict[str, str]"; expected "BuildRequest"
    await build.enqueue(client, {"month": "2026-11"})
    # expect: Argument 2 to "enqueue" of "Task" has incompatible type "Resize"; expected "BuildRequest"
    await build.enqueue(client, Resize(3))
    # expect: Argument 2 to "enqueue_sync" of "Task" has incompatible type "BuildRequest"; expected "Resize"
    resize.enqueue_sync(blocking, BuildRequest(month="x"))
    # expect: Argument 1 to "enqueue" of "Task" has incompatible type "SyncClient"; expected "AsyncJobsClient"
    await build.enqueue(blocking, BuildRequest(month="x"))
    # expect: Argument "queue" to "enqueue" of "Task" has incompatible type "int"; expected "str"
    await build.enqueue(client, BuildRequest(month="x"), queue=3)
