"""Typed tasks as an application writes them: mypy --strict passes on this file."""

from __future__ import annotations

from collections.abc import Coroutine
from dataclasses import dataclass
from typing import Any, assert_type

import pydantic

import conveyor


class BuildRequest(pydantic.BaseModel):
    month: str
    pages: int = 1


@dataclass
class Resize:
    width: int
    height: int


@conveyor.handler("reports.build", max_attempts=5, timeout=60)
async def build(ctx: conveyor.JobContext, payload: BuildRequest) -> dict[str, str]:
    return {"url": f"/reports/{payload.month}.pdf"}


@conveyor.handler("images.resize")
def resize(ctx: conveyor.JobContext, payload: Resize) -> int:
    return payload.width * payload.height


@conveyor.handler("mail.send")
async def send(ctx: conveyor.JobContext, payload: dict[str, Any]) -> None:
    return None


assert_type(build, conveyor.Task[BuildRequest, Coroutine[Any, Any, dict[str, str]]])
assert_type(resize, conveyor.Task[Resize, int])
assert_type(build.name, str)


async def produce(client: conveyor.Client, http: conveyor.HttpClient) -> list[conveyor.Job]:
    return [
        await build.enqueue(client, BuildRequest(month="2026-11"), queue="reports"),
        await build.enqueue(http, BuildRequest(month="2026-11"), delay_seconds=30),
        await resize.enqueue(client, Resize(640, 480), idempotency_key="img-1"),
        await send.enqueue(client, {"to": "ada@example.com"}),
    ]


def produce_blocking(client: conveyor.SyncClient, http: conveyor.SyncHttpClient) -> int:
    first = build.enqueue_sync(client, BuildRequest(month="2026-12"), max_attempts=2)
    second = resize.enqueue_sync(http, Resize(1, 1), timeout_seconds=5)
    return first.attempts + second.attempts


def call_directly(ctx: conveyor.JobContext) -> int:
    return resize(ctx, Resize(2, 3))  # a task is still the function
