"""Handler modules for the API's payload validation tests (CONVEYOR_API_HANDLERS names
this module): a model payload, a dataclass payload and a plain one."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pydantic

import conveyor


class ReportRequest(pydantic.BaseModel):
    month: str
    pages: int = 1


@dataclass
class ResizeRequest:
    width: int


@conveyor.handler("api-typed.report")
async def report(ctx: conveyor.JobContext, payload: ReportRequest) -> str:
    return payload.month


@conveyor.handler("api-typed.resize")
def resize(ctx: conveyor.JobContext, payload: ResizeRequest) -> int:
    return payload.width


@conveyor.handler("api-typed.plain")
async def plain(ctx: conveyor.JobContext, payload: Any) -> Any:
    return payload
