"""How often the test's redis-server has run a command (INFO commandstats)."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis


async def calls(r: Redis, command: str) -> int:
    """Calls of `command` since the server started, those inside scripts included."""
    stats: dict[str, Any] = await r.info("commandstats")
    return int(stats.get(f"cmdstat_{command}", {}).get("calls", 0))
