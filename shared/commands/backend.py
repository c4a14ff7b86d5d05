"""The backend a command talks to: Redis directly (`conveyor.client`) or the HTTP API.

Both are a `SyncJobsClient` (`conveyor.client_api`): the commands use that interface only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from conveyor.client_api import SyncJobsClient
from conveyor.commands.failures import InvalidInput, failures
from conveyor.commands.settings import settings_from_cli

if TYPE_CHECKING:
    from conveyor.client import SyncClient


@contextmanager
def producer(
    config: str | None, api_url: str | None, api_token: str | None, flags: Mapping[str, Any]
) -> Iterator[SyncJobsClient]:
    """The client the flags ask for, closed afterwards; errors inside become messages."""
    client: SyncJobsClient
    if api_url:
        from conveyor.http_client import SyncHttpClient

        redis_url = None
        client = SyncHttpClient(api_url, token=api_token or None)
    else:
        from conveyor.client import SyncClient

        settings = settings_from_cli(config, **flags)
        redis_url = settings.redis_url
        client = SyncClient.from_url(
            settings.redis_url,
            key_prefix=settings.key_prefix,
            result_ttl_seconds=settings.result_ttl_seconds,
            max_payload_bytes=settings.max_payload_bytes,
            timeout_seconds=settings.redis_timeout_seconds,
            wait_replicas=settings.redis_wait_replicas,
            wait_timeout_seconds=settings.redis_wait_timeout_seconds,
            max_queues=settings.max_queues,
        )
    with failures(redis_url):
        try:
            yield client
        finally:
            client.close()


@contextmanager
def redis_only(
    config: str | None, api_url: str | None, flags: Mapping[str, Any], *, refusal: str
) -> Iterator[SyncClient]:
    """The Redis client of a command that has no HTTP counterpart (`refusal`: the message
    when --api-url is given), closed afterwards; errors inside become messages."""
    if api_url:
        raise InvalidInput(refusal)
    from conveyor.client import SyncClient

    settings = settings_from_cli(config, **flags)
    with failures(settings.redis_url):
        client = SyncClient.from_url(
            settings.redis_url,
            key_prefix=settings.key_prefix,
            max_payload_bytes=settings.max_payload_bytes,
            timeout_seconds=settings.redis_timeout_seconds,
            max_limits_per_queue=settings.max_limits_per_queue,
            max_schedules=settings.max_schedules,
        )
        try:
            yield client
        finally:
            client.close()
