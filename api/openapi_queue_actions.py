"""The OpenAPI description of `api.routes.queue_actions`: a queue's throughput, and retrying
or purging its finished jobs in bounded batches. Merged into the document by
`api.openapi.openapi_document`, which imports this module (never the other way)."""

from __future__ import annotations

from typing import Any

from conveyor.api.openapi_parts import (
    Schema,
    error_response,
    invalid_response,
    operation,
    problem_example,
    ref,
    schema_ref,
    success_response,
)
from conveyor.api.routes.queue_actions import DEFAULT_BULK_LIMIT, DEFAULT_MINUTES, FINISHED
from conveyor.store.bulk import MAX_LIMIT
from conveyor.store.throughput import SLOTS


def schemas() -> dict[str, Schema]:
    count: Schema = {"type": "integer", "minimum": 0}
    minute = {
        "type": "object",
        "properties": {
            "start": {
                "type": "string",
                "format": "date-time",
                "description": "The minute's first instant (Redis clock).",
            },
            "completed": {**count, "description": "Jobs that completed in this minute."},
            "failed": {**count, "description": "Jobs that failed for good in this minute."},
        },
        "required": ["start", "completed", "failed"],
    }
    return {
        "ThroughputMinute": minute,
        "Throughput": {
            "type": "object",
            "properties": {
                "queue": {"type": "string"},
                "minutes": {
                    "type": "array",
                    "description": "Oldest first; the last item is the current minute, "
                    "still counting.",
                    "items": schema_ref("ThroughputMinute"),
                },
            },
            "required": ["queue", "minutes"],
        },
        "RetryFailedResult": {
            "type": "object",
            "properties": {
                "retried": {**count, "description": "Failed jobs now pending again."},
                "remaining": {**count, "description": "Failed jobs still in the queue."},
            },
            "required": ["retried", "remaining"],
        },
        "PurgeResult": {
            "type": "object",
            "properties": {
                "purged": {**count, "description": "Jobs deleted."},
                "remaining": {**count, "description": "Jobs still in that status."},
            },
            "required": ["purged", "remaining"],
        },
    }


def _limit_parameter() -> Schema:
    return {
        "name": "limit",
        "in": "query",
        "required": False,
        "description": "The most jobs this request handles; repeat the request while "
        "`remaining` is above 0.",
        "schema": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_LIMIT,
            "default": DEFAULT_BULK_LIMIT,
        },
    }


def _queue_not_found() -> Schema:
    return error_response(
        "No queue has this name (or the name is invalid).",
        {"not_found": problem_example(404, "queue-not-found", "Not Found", None)},
    )


def paths() -> dict[str, Schema]:
    start = "2030-01-01T12:00:00.000Z"
    example_minutes: list[dict[str, Any]] = [
        {"start": start, "completed": 118, "failed": 2},
        {"start": "2030-01-01T12:01:00.000Z", "completed": 97, "failed": 0},
    ]
    name = ref("parameters", "QueueName")
    return {
        **_pause_paths(name),
        "/queues/{name}/throughput": {
            "parameters": [name],
            "get": operation(
                "getQueueThroughput",
                "Jobs finished per minute",
                "queues",
                {
                    "200": success_response(
                        "Completed and failed jobs per minute.",
                        "Throughput",
                        {"throughput": {"queue": "mail", "minutes": example_minutes}},
                    ),
                    "404": _queue_not_found(),
                    "422": invalid_response(
                        "An invalid, unknown or repeated query parameter.",
                        [("minutes", f"must be an integer from 1 to {SLOTS}")],
                    ),
                },
                description="Counted by the scripts that finish jobs, in the same atomic step, "
                "so the counts outlive the jobs. A failed job counts once, when it fails for "
                "good (attempts that are retried do not count).",
                parameters=[
                    {
                        "name": "minutes",
                        "in": "query",
                        "required": False,
                        "description": "How many minutes back, the current one included.",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": SLOTS,
                            "default": DEFAULT_MINUTES,
                        },
                    }
                ],
            ),
        },
        "/queues/{name}/retry-failed": {
            "parameters": [name],
            "post": operation(
                "retryFailedJobs",
                "Run the failed jobs of a queue again",
                "queues",
                {
                    "200": success_response(
                        "Up to `limit` failed jobs, oldest first, are pending again (each as "
                        "POST /jobs/{job_id}/retry does it).",
                        "RetryFailedResult",
                        {"retried": {"retried": 1000, "remaining": 240}},
                    ),
                    "404": _queue_not_found(),
                    "422": invalid_response(
                        "An invalid, unknown or repeated query parameter.",
                        [("limit", f"must be an integer from 1 to {MAX_LIMIT}")],
                    ),
                },
                parameters=[_limit_parameter()],
            ),
        },
        "/queues/{name}/purge": {
            "parameters": [name],
            "post": operation(
                "purgeJobs",
                "Delete finished jobs of a queue now",
                "queues",
                {
                    "200": success_response(
                        "Up to `limit` jobs in `status`, oldest first, were deleted; they "
                        "cannot be retried afterwards.",
                        "PurgeResult",
                        {"purged": {"purged": 1000, "remaining": 0}},
                    ),
                    "404": _queue_not_found(),
                    "422": invalid_response(
                        "A missing or unfinished status, or an invalid, unknown or repeated "
                        "query parameter.",
                        [("status", f"must be one of {', '.join(FINISHED)}")],
                    ),
                },
                parameters=[
                    {
                        "name": "status",
                        "in": "query",
                        "required": True,
                        "description": "Which finished jobs to delete.",
                        "schema": {"type": "string", "enum": list(FINISHED)},
                    },
                    _limit_parameter(),
                ],
            ),
        },
    }


_QUEUE_EXAMPLE: dict[str, Any] = {
    "name": "mail",
    "waiting": 12,
    "pending_in_group": 0,
    "running": 3,
    "scheduled": 1,
    "retrying": 0,
    "failed": 2,
    "completed": 840,
    "canceled": 1,
    "consumers": 2,
    "oldest_waiting_age_seconds": 4.25,
    "expired": 0,
}


def _pause_paths(name: Schema) -> dict[str, Schema]:
    """`POST /queues/{name}/pause` and `/resume`."""
    out: dict[str, Schema] = {}
    for action, paused, summary, description in (
        (
            "pause",
            True,
            "Pause a queue: none of its jobs starts",
            "No job of the queue starts until it is resumed: workers stop reading its "
            "stream, and an entry already delivered to a worker goes back to the stream "
            "without being charged. Jobs already running finish. Jobs still arrive and "
            "scheduled ones still become due; they wait as pending. The pause is kept in "
            "Redis, so it outlives restarts of every process. Pausing a paused queue "
            "changes nothing.",
        ),
        (
            "resume",
            False,
            "Resume a paused queue",
            "Workers start its jobs again, within about a second. Resuming a queue that "
            "is not paused changes nothing.",
        ),
    ):
        out[f"/queues/{{name}}/{action}"] = {
            "parameters": [name],
            "post": operation(
                f"{action}Queue",
                summary,
                "queues",
                {
                    "200": success_response(
                        f"The queue's statistics, `paused` {str(paused).lower()}.",
                        "Queue",
                        {action: {**_QUEUE_EXAMPLE, "paused": paused}},
                    ),
                    "404": _queue_not_found(),
                    "422": invalid_response(
                        "An unknown query parameter.",
                        [("limit", "is not a known query parameter")],
                    ),
                },
                description=description,
            ),
        }
    return out
