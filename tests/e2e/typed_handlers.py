"""Typed handlers for the end-to-end test of typed payloads: the API imports this module
(CONVEYOR_API_HANDLERS) to validate payloads, the worker (CONVEYOR_HANDLERS) to run them."""

from __future__ import annotations

import pydantic

import conveyor


class BuildRequest(pydantic.BaseModel):
    month: str
    pages: int = 1


@conveyor.handler("e2e-typed.build")
async def build(ctx: conveyor.JobContext, payload: BuildRequest) -> dict[str, object]:
    # The model's own type in the result shows the handler got a BuildRequest, not a dict.
    return {"kind": type(payload).__name__, "month": payload.month, "pages": payload.pages}
