"""The backend a command talks to: Redis directly (`shared.client`) or the HTTP API."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, cast

from conveyor.cli import settings_from_cli
from conveyor.commands.failures import failures

if TYPE_CHECKING:
    from conveyor.job import Job
    from conveyor.store.producer import CancelOutcome, Page


class Producer(Protocol):
    """What the commands need of a client: `shared.client.SyncClient` or `SyncHttpClient`."""

    def enqueue(
        self,
        job_type: str,
        payload: Any = None,
        *,
        queue: str = ...,
        max_attempts: int | None = None,
        timeout_seconds: float | None = None,
        delay_seconds: float | None = None,
        idempotency_key: str | None = None,
    ) -> Job: ...
    def get(self, job_id: str) -> Job: ...
    def cancel(self, job_id: str) -> tuple[CancelOutcome, Job]: ...
    def replay(self, job_id: str) -> Job: ...
    def list(
        self,
        *,
        status: Sequence[str] | None = None,
        queue: str | None = None,
        type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> Page: ...
    def queues(self) -> Sequence[Any]: ...
    def workers(self) -> Sequence[Any]: ...
    def close(self) -> None: ...


@contextmanager
def producer(
    config: str | None, api_url: str | None, api_token: str | None, flags: Mapping[str, Any]
) -> Iterator[Producer]:
    """The client the flags ask for, closed afterwards; errors inside become messages."""
    if api_url:
        from conveyor.http_client import SyncHttpClient

        redis_url = None
        client: Producer = SyncHttpClient(api_url, token=api_token or None)
    else:
        from conveyor.client import SyncClient

        settings = settings_from_cli(config, **flags)
        redis_url = settings.redis_url
        client = cast(
            Producer,
            SyncClient.from_url(
                settings.redis_url,
                key_prefix=settings.key_prefix,
                result_ttl_seconds=settings.result_ttl_seconds,
                max_payload_bytes=settings.max_payload_bytes,
                timeout_seconds=settings.redis_timeout_seconds,
                wait_replicas=settings.redis_wait_replicas,
                wait_timeout_seconds=settings.redis_wait_timeout_seconds,
            ),
        )
    with failures(redis_url):
        try:
            yield client
        finally:
            client.close()
