"""Counting the requests a piece of code sends to Redis (round trips, not commands)."""

from __future__ import annotations

from typing import Any

import pytest
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline


class RoundTrips:
    """Counts requests sent to Redis: direct commands and pipeline executions."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        command, execute = Redis.execute_command, Pipeline.execute

        async def counted_command(client: Redis, *args: Any, **kw: Any) -> Any:
            self.count += 1
            return await command(client, *args, **kw)

        async def counted_execute(pipe: Pipeline, *args: Any, **kw: Any) -> Any:
            self.count += 1
            return await execute(pipe, *args, **kw)

        monkeypatch.setattr(Redis, "execute_command", counted_command)
        monkeypatch.setattr(Pipeline, "execute", counted_execute)

    @staticmethod
    def counts(client: object) -> bool:
        """Whether requests through `client` are counted: a standalone client's are, a
        Cluster client's (whose requests go to several servers) are not."""
        return isinstance(client, Redis)
