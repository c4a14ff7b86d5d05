"""A typed client of the Conveyor HTTP API: the same calls as `conveyor.client`, over HTTP.

`HttpClient` is async (``httpx.AsyncClient``); `SyncHttpClient` is its blocking form,
running one on a private event loop. Both have the interface of `conveyor.client_api`.
Every call is described as a `Call` (method, path, query, body, headers, how to read the
answer); answers and errors are read through the same functions.

Errors are those of `shared.errors`: 404 `JobNotFound`, 409 `InvalidTransition`,
`IdempotencyConflict`, `DuplicateJob` or `QueueLimitReached`, 413 `PayloadTooLarge`,
422 `ValidationError` (naming the first invalid field). 401, 403 and anything else
unexpected raise `ApiError`.

A 503 (the API's Redis did not answer) and a failure to reach the API are retried with
exponential backoff and full jitter, a few times within an overall deadline, then raise
`StoreUnavailable`. A request that may have been applied (a read timeout, a dropped
connection, or a 503: the API gives up waiting, but Redis may still run the script) is
retried only when repeating it is harmless: reads, cancels, and enqueues that carry an
idempotency key.

The modules: `calls` builds the `Call` descriptions, `answers` reads responses and maps
errors, `retrying` decides when to try again, `clients` holds the two clients.
"""

from conveyor.client_api import Item
from conveyor.http_client.answers import ApiError, job_from_json
from conveyor.http_client.answers import error_for as error_for
from conveyor.http_client.answers import queue_from_json as queue_from_json
from conveyor.http_client.answers import read_answer as read_answer
from conveyor.http_client.answers import rfc3339_to_ms as rfc3339_to_ms
from conveyor.http_client.answers import worker_from_json as worker_from_json
from conveyor.http_client.calls import CORRELATION_HEADER as CORRELATION_HEADER
from conveyor.http_client.calls import IDEMPOTENCY_HEADER as IDEMPOTENCY_HEADER
from conveyor.http_client.calls import cancel_call as cancel_call
from conveyor.http_client.calls import enqueue_call as enqueue_call
from conveyor.http_client.calls import enqueue_many_call as enqueue_many_call
from conveyor.http_client.calls import get_call as get_call
from conveyor.http_client.calls import list_call as list_call
from conveyor.http_client.calls import queue_call as queue_call
from conveyor.http_client.calls import queues_call as queues_call
from conveyor.http_client.calls import replay_call as replay_call
from conveyor.http_client.calls import workers_call as workers_call
from conveyor.http_client.clients import DEFAULT_TIMEOUT_SECONDS as DEFAULT_TIMEOUT_SECONDS
from conveyor.http_client.clients import HttpClient, SyncHttpClient
from conveyor.http_client.retrying import RetryConfig

__all__ = [
    "ApiError",
    "HttpClient",
    "Item",
    "RetryConfig",
    "SyncHttpClient",
    "job_from_json",
]
