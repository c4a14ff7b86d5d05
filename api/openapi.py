"""The OpenAPI 3.1 document of the HTTP API, served at ``/openapi.json``.

Written by hand rather than derived from the handlers: the handlers parse their input
strictly themselves (`api.dto`, `api.body`), so the document states the same rules in JSON
Schema. Every fixed limit and pattern it states is imported from the module that enforces
it; the limits that depend on the configuration (batch size, payload size) come from the
`Settings` the document is built for, and bearer authentication is declared only when the
API has tokens configured (`api.openapi_auth`). Tests keep the document and the application in step:
every route is documented, every documented operation exists, the job schema has exactly
the keys of `Job.to_json`, and the API is fuzzed against the document.
"""

from __future__ import annotations

import copy
from importlib import metadata
from typing import Any

from conveyor import codec, jobspec
from conveyor.api import (
    dto,
    openapi_auth,
    openapi_content_type,
    openapi_limits,
    openapi_queue_actions,
    openapi_resize,
    openapi_schedules,
)
from conveyor.api.body import (
    BATCH_VALUES_PER_JOB,
    batch_body_limit,
    batch_value_limit,
    body_limit,
)
from conveyor.api.content_type import DETAIL
from conveyor.api.openapi_parts import (
    JSON,
    Schema,
    anchored,
    error_response,
    invalid_response,
    json_content,
    operation,
    problem_example,
    ref,
    schema_ref,
    success_response,
)
from conveyor.api.routes import queues as queue_routes
from conveyor.ids import JOB_ID_PATTERN, NAME_PATTERN
from conveyor.job import BULKY_FIELDS, Attempt, Job, Outcome
from conveyor.states import Status

OPENAPI_VERSION = "3.1.0"
# The date-times the API reads (`api.dto.parse_rfc3339`): RFC 3339 with a mandatory offset.
DATE_TIME_PATTERN = anchored(dto.RFC3339.pattern)
IDEMPOTENCY_KEY_PATTERN = anchored(jobspec.IDEMPOTENCY_KEY.pattern)
EXAMPLE_ID = "01J9Z8Q4X3K5M7N2P6R8T0V1W3"
EXAMPLE_ID_2 = "01J9Z8Q4X3K5M7N2P6R8T0V1W4"


# -- examples -------------------------------------------------------------------------------


def _example_job(**changes: Any) -> dict[str, Any]:
    """A job as the API shows it, built through `Job.to_json` so examples cannot drift."""
    created = 1_893_499_200_000  # 2030-01-01T12:00:00Z
    fields: dict[str, Any] = {
        "id": EXAMPLE_ID,
        "type": "email.send",
        "queue": "mail",
        "status": Status.PENDING,
        "payload": {"to": "ada@example.com", "template": "welcome"},
        "max_attempts": 5,
        "timeout_seconds": 30.0,
        "correlation_id": "3f2b9c1d6e8a4b7c9d0e1f2a3b4c5d6e",
        "created_at": created,
        "updated_at": created,
    }
    fields.update(changes)
    return Job(**fields).to_json()


def _failed_job() -> dict[str, Any]:
    created = 1_893_499_200_000
    return _example_job(
        status=Status.FAILED,
        attempts=1,
        max_attempts=1,
        last_error="SMTPError: 550 mailbox unavailable",
        updated_at=created + 2_500,
        started_at=created + 1_000,
        finished_at=created + 2_500,
        history=(
            Attempt(
                attempt=1,
                worker="worker-a1b2c3",
                started_at=created + 1_000,
                finished_at=created + 2_500,
                outcome=Outcome.FAILED,
                error="SMTPError: 550 mailbox unavailable",
            ),
        ),
    )


# -- schemas --------------------------------------------------------------------------------


def _json_value() -> Schema:
    """Any JSON value the store can carry (`conveyor.codec`): integers must fit msgpack's
    64 bits, at any depth.

    Written without `type`, `anyOf` or `not`: keywords that apply to one kind of value only
    (`items` to arrays, `additionalProperties` to objects, `then` under `if` to integers)
    constrain the values nested anywhere while every other value passes. Client generators
    that cannot parse a recursive union read this as "any value".

    JSON Schema cannot tell 1e30 (a float, accepted) from 10**30 written out (an integer,
    refused); the schema takes every integral value for an integer, so a client that follows
    it is never refused."""
    return {
        "description": (
            "Any JSON value: null, boolean, number, string, array or object. Integers must "
            f"fit in 64 bits (-2^63 .. 2^64-1), nesting is limited to {codec.MAX_DEPTH} "
            "levels, and strings may not hold lone UTF-16 surrogates."
        ),
        "if": {"type": "integer"},
        "then": {"minimum": codec.INT_MIN, "maximum": codec.INT_MAX},
        "items": schema_ref("JsonValue"),
        "additionalProperties": schema_ref("JsonValue"),
    }


def _job_fields(settings: Any, prefix: str) -> dict[str, Schema]:
    """The properties of a job creation request (shared by `JobCreate` and batch items)."""
    where = f" ({prefix}<field> in errors)" if prefix else ""
    payload: Schema = {
        "$ref": "#/components/schemas/JsonValue",
        "description": "Any JSON value, for the handler.",
    }
    payload["description"] += (
        f" Encoded, it may take at most {settings.max_payload_bytes} bytes "
        f"(max_payload_bytes); a larger payload is refused with 413{where}."
    )
    optional: dict[str, Schema] = {
        "queue": {
            "type": ["string", "null"],
            "pattern": anchored(NAME_PATTERN),
            "default": jobspec.DEFAULT_QUEUE,
            "description": "The queue the job goes to.",
            "examples": ["mail"],
        },
        "max_attempts": {
            "type": ["integer", "null"],
            "minimum": 1,
            "maximum": jobspec.MAX_ATTEMPTS,
            "description": "Attempts before the job fails for good. Absent: the handler's "
            "or the worker's default.",
        },
        "delay_seconds": {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": jobspec.MAX_DELAY_SECONDS,
            "description": "Run no sooner than this many seconds from now (at most 365 "
            "days). Cannot be combined with run_at.",
        },
        "run_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "pattern": DATE_TIME_PATTERN,
            "description": "Run no sooner than this RFC 3339 date-time, which must include "
            "a timezone offset. A time in the past means now. Cannot be combined with "
            "delay_seconds.",
            "examples": ["2030-01-01T12:00:00Z"],
        },
        "timeout_seconds": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "maximum": jobspec.MAX_TIMEOUT_SECONDS,
            "description": "How long one attempt may run before it is stopped and counted "
            "as failed. Absent: the handler's or the worker's default.",
        },
        "expires_at": {
            "type": ["string", "null"],
            "format": "date-time",
            "pattern": DATE_TIME_PATTERN,
            "description": "Never start the job after this RFC 3339 date-time (with a "
            "timezone offset), judged by Redis's clock: a job still waiting then (on the "
            "stream, scheduled or retrying) ends `expired` without running. A running "
            "attempt is not interrupted. A time before 1970 is stored as "
            "1970-01-01T00:00:00Z (passed all the same). Cannot be combined with "
            "expire_after_seconds.",
            "examples": ["2030-01-01T12:05:00Z"],
        },
        "expire_after_seconds": {
            "type": ["number", "null"],
            "exclusiveMinimum": 0,
            "maximum": jobspec.MAX_DELAY_SECONDS,
            "description": "Never start the job later than this many seconds after it was "
            "created, counted by Redis's clock (see expires_at). Cannot be combined with "
            "expires_at.",
        },
        "limit_key": {
            "type": ["string", "null"],
            "pattern": anchored(NAME_PATTERN),
            "not": {"const": "queue"},
            "description": "The job counts under the concurrency and rate limits of this "
            "key (a tenant id, say) as well as under its queue's and its type's (PUT "
            "/queues/{name}/limits/{key}). Absent: only those two.",
            "examples": ["tenant-42"],
        },
        "unique_key": {
            "type": ["string", "null"],
            "pattern": IDEMPOTENCY_KEY_PATTERN,
            "description": "While a job of the queue created with this key is not finished, "
            "a create with the same key answers that job (200) instead of creating one, "
            "whatever the rest of the request asks.",
            "examples": ["report-2030-01"],
        },
        "unique_for_seconds": {
            "type": ["number", "null"],
            "minimum": 0,
            "maximum": jobspec.MAX_UNIQUE_FOR_SECONDS,
            "description": "Keep the unique_key held this long after the job finished (at "
            "most while the finished job is retained). Needs a unique_key.",
        },
    }
    for schema in optional.values():
        schema["description"] += " null is the same as absent."
    return {
        "type": {
            "type": "string",
            "pattern": anchored(NAME_PATTERN),
            "description": "What kind of job this is: selects the handler that runs it.",
            "examples": ["email.send"],
        },
        "payload": payload,
        **optional,
    }


# delay_seconds and run_at exclude each other (a null one counts as absent).
_NOT_BOTH_DELAYS: Schema = {
    "not": {
        "properties": {"delay_seconds": {"type": "number"}, "run_at": {"type": "string"}},
        "required": ["delay_seconds", "run_at"],
    },
}
# unique_for_seconds needs a unique_key (a null one counts as absent).
_UNIQUE_FOR_NEEDS_KEY: Schema = {
    "if": {
        "properties": {"unique_for_seconds": {"type": "number"}},
        "required": ["unique_for_seconds"],
    },
    "then": {"properties": {"unique_key": {"type": "string"}}, "required": ["unique_key"]},
}
# So do expire_after_seconds and expires_at.
_NOT_BOTH_EXPIRIES: Schema = {
    "not": {
        "properties": {
            "expire_after_seconds": {"type": "number"},
            "expires_at": {"type": "string"},
        },
        "required": ["expire_after_seconds", "expires_at"],
    }
}


def _job_create(settings: Any) -> Schema:
    return {
        "type": "object",
        "description": "A job to create. Unknown fields are refused (422) rather than "
        'ignored, and no value is coerced ("3" is not a number).',
        "properties": _job_fields(settings, ""),
        "required": ["type"],
        "additionalProperties": False,
        "allOf": [_NOT_BOTH_DELAYS, _NOT_BOTH_EXPIRIES, _UNIQUE_FOR_NEEDS_KEY],
    }


def _batch_item(settings: Any) -> Schema:
    properties = _job_fields(settings, "jobs/<i>/")
    properties["idempotency_key"] = {
        "type": ["string", "null"],
        "pattern": IDEMPOTENCY_KEY_PATTERN,
        "description": "Like the Idempotency-Key header of POST /jobs, for this item "
        "(null is the same as absent).",
    }
    return {
        "type": "object",
        "description": "One job of a batch: the POST /jobs body plus an optional idempotency_key.",
        "properties": properties,
        "required": ["type"],
        "additionalProperties": False,
        "allOf": [_NOT_BOTH_DELAYS, _NOT_BOTH_EXPIRIES, _UNIQUE_FOR_NEEDS_KEY],
    }


def _batch_create(settings: Any) -> Schema:
    return {
        "type": "object",
        "description": (
            f"Up to {settings.max_batch_jobs} jobs (max_batch_jobs), created all or nothing. "
            f"The body may take at most {batch_body_limit(settings.max_payload_bytes)} bytes "
            f"and hold at most {batch_value_limit(settings.max_batch_jobs)} JSON values "
            "(each object, array and comma outside strings counts; 422 naming `jobs` "
            "before the body is parsed)."
        ),
        "properties": {
            "jobs": {
                "type": "array",
                "minItems": 1,
                "maxItems": settings.max_batch_jobs,
                "items": schema_ref("BatchJobCreate"),
            }
        },
        "required": ["jobs"],
        "additionalProperties": False,
    }


_TIME: Schema = {"type": "string", "format": "date-time"}
_OPTIONAL_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}


def _attempt() -> Schema:
    return {
        "type": "object",
        "description": "One attempt of a job, as kept in its history (the latest 20).",
        "properties": {
            "attempt": {"type": "integer", "minimum": 0},
            "worker": {"type": ["string", "null"]},
            "started_at": _OPTIONAL_TIME,
            "finished_at": _OPTIONAL_TIME,
            "outcome": {
                "type": "string",
                "description": "How the attempt ended, e.g. completed, failed, timed out, "
                "canceled, lost and reclaimed, returned at shutdown.",
            },
            "error": {"type": ["string", "null"]},
        },
        "required": ["attempt", "worker", "started_at", "finished_at", "outcome", "error"],
    }


def _job() -> Schema:
    properties: dict[str, Schema] = {
        "id": {"type": "string", "pattern": anchored(JOB_ID_PATTERN), "description": "A ULID."},
        "type": {"type": "string", "pattern": anchored(NAME_PATTERN)},
        "queue": {"type": "string", "pattern": anchored(NAME_PATTERN)},
        "status": {"type": "string", "enum": [s.value for s in Status]},
        "payload": {"description": "The payload the job was created with (any JSON value)."},
        "result": {"description": "What the handler returned (any JSON value), or null."},
        "attempts": {"type": "integer", "minimum": 0},
        "max_attempts": {
            "type": ["integer", "null"],
            "minimum": 1,
            "description": "Attempts before the job fails for good: its own max_attempts; "
            "when it was created without one, the limit the worker that started its latest "
            "attempt applies (the handler's max_attempts, else the worker's default). null: "
            "created without one and not started by a worker yet.",
        },
        "timeout_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "last_error": {"type": ["string", "null"]},
        "created_at": _TIME,
        "updated_at": _TIME,
        "run_at": _OPTIONAL_TIME,
        "started_at": _OPTIONAL_TIME,
        "finished_at": _OPTIONAL_TIME,
        "next_run_at": _OPTIONAL_TIME,
        "expires_at": {
            **_OPTIONAL_TIME,
            "description": "The job never starts after this instant (Redis clock): a job "
            "still waiting then ends `expired`. A job already running is not interrupted. "
            "null: no expiry.",
        },
        "correlation_id": {"type": ["string", "null"]},
        "limit_key": {"type": ["string", "null"]},
        "schedule": {
            "type": ["string", "null"],
            "description": "The periodic schedule that created the job (PUT /schedules); "
            "null for a job created otherwise.",
        },
        "cancel_requested": {"type": "boolean"},
        "worker": {"type": ["string", "null"]},
        "history": {"type": "array", "items": schema_ref("Attempt")},
    }
    return {
        "type": "object",
        "description": "A job. Times are RFC 3339 UTC with millisecond precision.",
        "properties": properties,
        "required": list(properties),
    }


def _queue() -> Schema:
    count: Schema = {"type": "integer", "minimum": 0}
    properties: dict[str, Schema] = {
        "name": {"type": "string", "pattern": anchored(NAME_PATTERN)},
        "waiting": {**count, "description": "On the stream, not yet delivered to a worker."},
        "pending_in_group": {**count, "description": "Delivered, not yet acknowledged."},
        "running": count,
        "scheduled": count,
        "retrying": count,
        "failed": count,
        "completed": count,
        "canceled": count,
        "consumers": {**count, "description": "Consumers in the queue's group."},
        "expired": {**count, "description": "Jobs that ended expired (never started)."},
        "paused": {
            "type": "boolean",
            "description": "No job of the queue starts while it is paused "
            "(`POST /queues/{name}/pause`, `/resume`).",
        },
        "oldest_waiting_age_seconds": {
            "type": ["number", "null"],
            "minimum": 0,
            "description": "Age of the oldest undelivered entry; null when none waits.",
        },
    }
    return {"type": "object", "properties": properties, "required": list(properties)}


def _worker() -> Schema:
    count: Schema = {"type": "integer", "minimum": 0}
    properties: dict[str, Schema] = {
        "id": {"type": "string"},
        "host": {"type": "string"},
        "pid": {"type": "integer"},
        "queues": {"type": "array", "items": {"type": "string"}},
        "concurrency": count,
        "in_flight": count,
        "processed": count,
        "failed": count,
        "started_at": _TIME,
        "last_seen": _TIME,
        "stale": {
            "type": "boolean",
            "description": "Its last heartbeat is older than 2 heartbeat intervals (the "
            "API's heartbeat_seconds): probably stuck or gone; it is listed until its "
            "heartbeat expires.",
        },
    }
    return {
        "type": "object",
        "description": "A live worker (one that reported recently).",
        "properties": properties,
        "required": list(properties),
    }


def _problem() -> Schema:
    return {
        "type": "object",
        "description": "RFC 9457 problem details.",
        "properties": {
            "type": {
                "type": "string",
                "description": "urn:conveyor:problem:<slug>, or about:blank for generic "
                "HTTP errors.",
            },
            "title": {"type": "string"},
            "status": {"type": "integer", "minimum": 400, "maximum": 599},
            "detail": {"type": "string"},
            "errors": {
                "type": "array",
                "description": "Every offending input, each named by its field.",
                "items": {
                    "type": "object",
                    "properties": {
                        "field": {"type": "string"},
                        "message": {"type": "string"},
                    },
                    "required": ["field", "message"],
                },
            },
        },
        "required": ["type", "title", "status"],
    }


def _schemas(settings: Any) -> dict[str, Schema]:
    return {
        "JsonValue": _json_value(),
        "Job": _job(),
        "Attempt": _attempt(),
        "JobCreate": _job_create(settings),
        "BatchJobCreate": _batch_item(settings),
        "BatchCreate": _batch_create(settings),
        "BatchResult": {
            "type": "object",
            "properties": {"jobs": {"type": "array", "items": schema_ref("Job")}},
            "required": ["jobs"],
        },
        "JobListItem": _job_list_item(),
        "JobList": {
            "type": "object",
            "description": f"At most {settings.max_list_bytes} bytes of items "
            "(max_list_bytes): a page that would take more ends early, with next_cursor to "
            "the rest; it always holds at least one job.",
            "properties": {
                "items": {"type": "array", "items": schema_ref("JobListItem")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last.",
                },
            },
            "required": ["items", "next_cursor"],
        },
        "Queue": _queue(),
        "QueueList": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": schema_ref("Queue")},
                "next_cursor": {
                    "type": ["string", "null"],
                    "description": "Pass as `cursor` for the next page; null on the last.",
                },
                "total": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Queues known when the statistics were read. Only the "
                    "first max_queues by name are reported, so the pages may hold fewer.",
                },
            },
            "required": ["items", "next_cursor", "total"],
        },
        "Worker": _worker(),
        "WorkerList": {
            "type": "object",
            "properties": {"items": {"type": "array", "items": schema_ref("Worker")}},
            "required": ["items"],
        },
        "Problem": _problem(),
        "Readiness": {
            "type": "object",
            "description": "`workers`, `queues` and `warnings` are there for a request with a "
            "valid read or full token, or when the API is open (api_auth none); anyone else "
            "gets only `status`.",
            "required": ["status"],
            "properties": {
                "status": {"type": "string", "enum": ["ready"]},
                "workers": {
                    "type": "array",
                    "description": "Live workers, from their heartbeats.",
                    "items": {
                        "type": "object",
                        "required": [
                            "id",
                            "host",
                            "pid",
                            "queues",
                            "concurrency",
                            "in_flight",
                            "last_seen",
                        ],
                        "properties": {
                            "id": {"type": "string"},
                            "host": {"type": ["string", "null"]},
                            "pid": {"type": ["integer", "null"]},
                            "queues": {"type": "array", "items": {"type": "string"}},
                            "concurrency": {"type": ["integer", "null"]},
                            "in_flight": {"type": ["integer", "null"]},
                            "last_seen": {"type": ["string", "null"], "format": "date-time"},
                        },
                    },
                },
                "workers_total": {
                    "type": "integer",
                    "minimum": 0,
                    "description": "Worker ids in the registry; at most 100 workers, the "
                    "most recently seen, are listed.",
                },
                "queues_age_seconds": {
                    "type": ["number", "null"],
                    "minimum": 0,
                    "description": "Age of the queue statistics shown: the last ones this "
                    "API process read for GET /queues or /metrics (the probe never reads "
                    "them); null when none was read yet (then `queues` is empty).",
                },
                "queues": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["name", "waiting", "consumers", "live_workers"],
                        "properties": {
                            "name": {"type": "string"},
                            "waiting": {"type": "integer", "minimum": 0},
                            "consumers": {"type": "integer", "minimum": 0},
                            "live_workers": {"type": "integer", "minimum": 0},
                        },
                    },
                },
                "warnings": {
                    "type": "array",
                    "description": "Queues with waiting jobs that no live worker consumes.",
                    "items": {"type": "string"},
                },
            },
        },
        "Health": {
            "type": "object",
            "properties": {"status": {"type": "string", "enum": ["ok", "ready"]}},
            "required": ["status"],
        },
    }


# -- parameters -----------------------------------------------------------------------------


def _parameters() -> dict[str, Schema]:
    return {
        "JobId": {
            "name": "job_id",
            "in": "path",
            "required": True,
            "description": "The job's id (a ULID). Anything else is answered 404.",
            "schema": {"type": "string", "pattern": anchored(JOB_ID_PATTERN)},
            "example": EXAMPLE_ID,
        },
        "QueueName": {
            "name": "name",
            "in": "path",
            "required": True,
            "description": "The queue's name. An unknown or invalid name is answered 404.",
            "schema": {"type": "string", "pattern": anchored(NAME_PATTERN)},
            "example": "mail",
        },
        "IdempotencyKey": {
            "name": "Idempotency-Key",
            "in": "header",
            "required": False,
            "description": "Makes the request safe to repeat: within the idempotency TTL, "
            "the same key with the same body returns the job it created (200) instead of "
            "creating another; with a different body it is refused (409). Keys are "
            "remembered per queue. A malformed key is refused (422).",
            "schema": {"type": "string", "pattern": IDEMPOTENCY_KEY_PATTERN},
            "example": "order-4711-confirmation",
        },
        "CorrelationId": {
            "name": "X-Correlation-ID",
            "in": "header",
            "required": False,
            "description": "Ties the request to its log lines and to the jobs it creates. A "
            f"value matching {anchored(dto.CORRELATION_ID.pattern)} is used as is and echoed back "
            "in the "
            "response's X-Correlation-ID header; anything else is replaced by a new id.",
            "schema": {"type": "string"},
            "example": "3f2b9c1d6e8a4b7c9d0e1f2a3b4c5d6e",
        },
    }


def _job_list_item() -> Schema:
    """A job as a listing shows it: payload and result only when `include` names them."""
    job = _job()
    return {
        **job,
        "description": "A job in a listing: as a Job, but with payload and result only "
        "when the request's include parameter names them.",
        "required": [n for n in job["required"] if n not in BULKY_FIELDS],
    }


def _list_parameters() -> list[Schema]:
    name: Schema = {"type": "string", "pattern": anchored(NAME_PATTERN)}
    time: Schema = {"type": "string", "format": "date-time", "pattern": DATE_TIME_PATTERN}
    return [
        {
            "name": "status",
            "in": "query",
            "description": "Only jobs in these statuses. May repeat; each value may also "
            "list several statuses separated by commas.",
            "schema": {
                "type": "array",
                "items": {"type": "string", "enum": [s.value for s in Status]},
            },
            "style": "form",
            "explode": True,
        },
        {"name": "type", "in": "query", "description": "Only jobs of this type.", "schema": name},
        {"name": "queue", "in": "query", "description": "Only jobs of this queue.", "schema": name},
        {
            "name": "limit",
            "in": "query",
            "description": "Page size.",
            "schema": {
                "type": "integer",
                "minimum": 1,
                "maximum": dto.MAX_LIMIT,
                "default": dto.DEFAULT_LIMIT,
            },
        },
        {
            "name": "cursor",
            "in": "query",
            "description": "The next_cursor of the previous page.",
            "schema": {"type": "string", "pattern": anchored(JOB_ID_PATTERN)},
        },
        {
            "name": "created_after",
            "in": "query",
            "description": "Only jobs created at or after this RFC 3339 date-time "
            "(with a timezone).",
            "schema": time,
        },
        {
            "name": "created_before",
            "in": "query",
            "description": "Only jobs created before this RFC 3339 date-time (with a timezone).",
            "schema": time,
        },
        {
            "name": "include",
            "in": "query",
            "description": "Which of the bulky fields the items carry, separated by commas: "
            "`payload`, `result`, or both (`payload,result`). Without it the items leave "
            "both out, and a page of large jobs costs their states alone.",
            "schema": {"type": "string", "pattern": "^((payload|result)(,(payload|result))*)?$"},
            "example": "payload,result",
        },
    ]


# -- responses ------------------------------------------------------------------------------

_RETRY_AFTER: Schema = {
    "description": "Seconds to wait before retrying.",
    "required": True,
    "schema": {"type": "string", "pattern": "^[0-9]+$"},
}
_LOCATION: Schema = {
    "description": "The new job's URL.",
    "required": True,
    "schema": {"type": "string"},
}


def _shared_responses(settings: Any) -> dict[str, Schema]:
    """Error responses used by several operations."""
    batch_limit = batch_body_limit(settings.max_payload_bytes)
    return {
        "JobNotFound": error_response(
            "No job has this id (or the id is not a ULID).",
            {
                "not_found": problem_example(
                    404, "job-not-found", "Not Found", f"no job has the id {EXAMPLE_ID}"
                )
            },
        ),
        "MalformedJson": error_response(
            "The body is not valid JSON (also: duplicate keys, NaN, nesting too deep), or "
            "a Content-Length header is invalid.",
            {
                "malformed": problem_example(
                    400,
                    "malformed-json",
                    "Bad Request",
                    "malformed JSON at line 1 column 9: Expecting value",
                )
            },
        ),
        "UnsupportedMediaType": error_response(
            "The request does not say `Content-Type: application/json` (UTF-8): every "
            "POST, PUT, PATCH and DELETE must, with a body or without; nothing was read "
            "or changed.",
            {
                "unsupported": problem_example(
                    415,
                    "unsupported-media-type",
                    "Unsupported Media Type",
                    "the request body must be application/json",
                ),
                "no_json_header": problem_example(
                    415,
                    "unsupported-media-type",
                    "Unsupported Media Type",
                    DETAIL,
                ),
            },
        ),
        "JobTooLarge": error_response(
            f"The body is over {body_limit(settings.max_payload_bytes)} bytes, or the "
            f"encoded payload over {settings.max_payload_bytes} bytes (max_payload_bytes).",
            {
                "payload": problem_example(
                    413,
                    "payload-too-large",
                    "Content Too Large",
                    f"payload is {settings.max_payload_bytes + 1} bytes encoded, more than "
                    f"{settings.max_payload_bytes}",
                    [
                        (
                            "payload",
                            f"is {settings.max_payload_bytes + 1} bytes encoded, more than "
                            f"{settings.max_payload_bytes}",
                        )
                    ],
                ),
                "body": problem_example(
                    413,
                    "request-too-large",
                    "Content Too Large",
                    f"the request body is larger than "
                    f"{body_limit(settings.max_payload_bytes)} bytes",
                ),
            },
        ),
        "BatchTooLarge": error_response(
            f"The body is over {batch_limit} bytes, or one item's encoded payload over "
            f"{settings.max_payload_bytes} bytes (the error names jobs/<i>/payload).",
            {
                "payload": problem_example(
                    413,
                    "payload-too-large",
                    "Content Too Large",
                    f"jobs/2/payload is {settings.max_payload_bytes + 1} bytes encoded, "
                    f"more than {settings.max_payload_bytes}",
                    [
                        (
                            "jobs/2/payload",
                            f"is {settings.max_payload_bytes + 1} bytes encoded, more than "
                            f"{settings.max_payload_bytes}",
                        )
                    ],
                ),
                "body": problem_example(
                    413,
                    "request-too-large",
                    "Content Too Large",
                    f"the request body is larger than {batch_limit} bytes",
                ),
            },
        ),
        "Unavailable": error_response(
            "Redis did not answer in time; retry after the given delay. With "
            "CONVEYOR_REDIS_WAIT_REPLICAS set, a create is answered 503 `not-replicated` when "
            "fewer replicas confirmed the write in time: the job may exist (`job_ids`); read "
            "it back or repeat the request with its Idempotency-Key.",
            {
                "unavailable": problem_example(
                    503,
                    "store-unavailable",
                    "Service Unavailable",
                    "the job store did not answer in time; retry later",
                )
            },
            {"Retry-After": _RETRY_AFTER},
        ),
        "InternalError": error_response(
            "An unexpected error; details are only in the server's log.",
            {
                "internal": problem_example(
                    500,
                    "internal-error",
                    "Internal Server Error",
                    "an unexpected error occurred",
                )
            },
        ),
    }


def _conflict(description: str, examples: dict[str, Any]) -> Schema:
    return error_response(description, examples)


_TRANSITION_CONFLICT = {
    "terminal": problem_example(
        409,
        "invalid-transition",
        "Conflict",
        "cannot cancel the job: its status is completed",
        job_status="completed",
    )
}
_KEY_REUSED = "was already used for a request with a different body"
_QUEUE_LIMIT = {
    "queue-limit": problem_example(
        409,
        "queue-limit",
        "Conflict",
        "at most 1000 queues may hold jobs (CONVEYOR_MAX_QUEUES); nothing was written. A "
        "queue leaves the count once it holds no job",
        max_queues=1000,
        queues=["reports-2031"],
    )
}


def _idempotency_conflict(field: str) -> dict[str, Any]:
    return {
        "idempotency": problem_example(
            409,
            "idempotency-conflict",
            "Conflict",
            f"the idempotency key order-4711-confirmation {_KEY_REUSED} (job {EXAMPLE_ID})",
            [(field, _KEY_REUSED)],
            job_id=EXAMPLE_ID,
        )
    }


# -- operations -----------------------------------------------------------------------------


def _jobs_paths(settings: Any) -> dict[str, Schema]:
    pending = _example_job()
    job_not_found = ref("responses", "JobNotFound")
    create_body = {
        "required": True,
        "content": {
            JSON: {
                "schema": schema_ref("JobCreate"),
                "examples": {
                    "now": {"value": {"type": "email.send", "payload": {"to": "ada@example.com"}}},
                    "delayed": {
                        "value": {
                            "type": "report.build",
                            "queue": "reports",
                            "payload": {"month": "2030-01"},
                            "delay_seconds": 60,
                            "max_attempts": 3,
                            "timeout_seconds": 300,
                        }
                    },
                },
            }
        },
    }
    batch_body = {
        "required": True,
        "content": {
            JSON: {
                "schema": schema_ref("BatchCreate"),
                "examples": {
                    "two": {
                        "value": {
                            "jobs": [
                                {"type": "email.send", "payload": {"to": "ada@example.com"}},
                                {
                                    "type": "email.send",
                                    "payload": {"to": "bob@example.com"},
                                    "idempotency_key": "order-4712-confirmation",
                                },
                            ]
                        }
                    }
                },
            }
        },
    }
    second = _example_job(id=EXAMPLE_ID_2, payload={"to": "bob@example.com"})
    return {
        "/jobs": {
            "post": operation(
                "createJob",
                "Create a job",
                "jobs",
                {
                    "201": {
                        "description": "Created: the new job.",
                        "headers": {"Location": _LOCATION},
                        "content": json_content(schema_ref("Job"), {"created": pending}),
                    },
                    "200": success_response(
                        "An idempotent repeat (same Idempotency-Key, same body): the job the "
                        "first request created; or the unique_key is held: the job holding "
                        "it. Nothing new is created.",
                        "Job",
                        {"repeat": pending},
                    ),
                    "400": ref("responses", "MalformedJson"),
                    "409": _conflict(
                        "The Idempotency-Key was used with a different body; or the job's "
                        "queue is not in use and max_queues queues already hold jobs "
                        "(queue-limit). Nothing was written.",
                        {**_idempotency_conflict("Idempotency-Key"), **_QUEUE_LIMIT},
                    ),
                    "413": ref("responses", "JobTooLarge"),
                    "415": ref("responses", "UnsupportedMediaType"),
                    "422": invalid_response(
                        "Invalid fields (each is named in errors), an unknown field, or a "
                        "malformed Idempotency-Key.",
                        [("type", f"must match {NAME_PATTERN}"), ("delay", "is not a known field")],
                    ),
                },
                description=f"The encoded payload may take at most {settings.max_payload_bytes}"
                " bytes (max_payload_bytes).",
                parameters=[ref("parameters", "IdempotencyKey")],
                body=create_body,
            ),
            "get": operation(
                "listJobs",
                "List jobs, newest first",
                "jobs",
                {
                    "200": success_response(
                        "A page of jobs.",
                        "JobList",
                        {"page": {"items": [pending], "next_cursor": EXAMPLE_ID}},
                    ),
                    "422": invalid_response(
                        "An invalid, unknown or repeated query parameter.",
                        [("limit", f"must be an integer between 1 and {dto.MAX_LIMIT}")],
                    ),
                },
                description="Unknown query parameters are refused (422).",
                parameters=_list_parameters(),
            ),
        },
        "/jobs/batch": {
            "post": operation(
                "createJobs",
                "Create several jobs at once",
                "jobs",
                {
                    "201": success_response(
                        "Created: the jobs, in request order (an idempotent repeat shows the "
                        "job created first).",
                        "BatchResult",
                        {"created": {"jobs": [pending, second]}},
                    ),
                    "200": success_response(
                        "Every item was an idempotent repeat: nothing was created.",
                        "BatchResult",
                        {"repeat": {"jobs": [pending, second]}},
                    ),
                    "400": ref("responses", "MalformedJson"),
                    "409": _conflict(
                        "An item's idempotency_key was used with a different body; or the "
                        "items name queues not in use that would take the queues holding "
                        "jobs past max_queues (queue-limit: the whole batch is refused). "
                        "Nothing was written.",
                        {**_idempotency_conflict("jobs/1/idempotency_key"), **_QUEUE_LIMIT},
                    ),
                    "413": ref("responses", "BatchTooLarge"),
                    "415": ref("responses", "UnsupportedMediaType"),
                    "422": invalid_response(
                        "Invalid items, each error named jobs/<i>/<field> (or `jobs`, for too "
                        "many jobs or JSON values); nothing was written.",
                        [("jobs/1/max_attempts", f"must be between 1 and {jobspec.MAX_ATTEMPTS}")],
                    ),
                },
                description=(
                    f"At most {settings.max_batch_jobs} jobs (max_batch_jobs); each payload "
                    f"at most {settings.max_payload_bytes} bytes encoded; the body at most "
                    f"{batch_value_limit(settings.max_batch_jobs)} JSON values in all "
                    f"({BATCH_VALUES_PER_JOB} per job, counted as its objects, arrays and "
                    "commas outside strings). All or nothing: "
                    "when any item is refused, no job is created."
                ),
                body=batch_body,
            ),
        },
        "/jobs/{job_id}": {
            "parameters": [ref("parameters", "JobId")],
            "get": operation(
                "getJob",
                "Get a job",
                "jobs",
                {
                    "200": success_response("The job.", "Job", {"job": pending}),
                    "404": job_not_found,
                },
            ),
            "delete": operation(
                "cancelJob",
                "Cancel a job",
                "jobs",
                {
                    "200": success_response(
                        "Canceled at once (it was not running).",
                        "Job",
                        {"canceled": _example_job(status=Status.CANCELED)},
                    ),
                    "202": success_response(
                        "The job is running: its worker was asked to stop; the job shows "
                        "cancel_requested until it does.",
                        "Job",
                        {
                            "requested": _example_job(
                                status=Status.RUNNING, cancel_requested=True, attempts=1
                            )
                        },
                    ),
                    "404": job_not_found,
                    "409": _conflict("The job already finished.", _TRANSITION_CONFLICT),
                },
            ),
        },
        "/jobs/{job_id}/retry": {
            "parameters": [ref("parameters", "JobId")],
            "post": operation(
                "retryJob",
                "Run a failed or canceled job again",
                "jobs",
                {
                    "200": success_response(
                        "The job is pending again: attempts reset to 0; history and "
                        "last_error kept.",
                        "Job",
                        {
                            "retried": {
                                **_failed_job(),
                                "status": "pending",
                                "attempts": 0,
                                "started_at": None,
                                "finished_at": None,
                            }
                        },
                    ),
                    "404": job_not_found,
                    "409": _conflict(
                        "The job is neither failed nor canceled.",
                        {
                            "not_failed": problem_example(
                                409,
                                "invalid-transition",
                                "Conflict",
                                "cannot replay the job: its status is running",
                                job_status="running",
                            )
                        },
                    ),
                },
            ),
        },
    }


def _queue_example() -> dict[str, Any]:
    return {
        "name": "mail",
        "waiting": 12,
        "pending_in_group": 3,
        "running": 3,
        "scheduled": 1,
        "retrying": 0,
        "failed": 2,
        "completed": 840,
        "canceled": 1,
        "consumers": 2,
        "oldest_waiting_age_seconds": 4.25,
        "expired": 0,
        "paused": False,
    }


def _other_paths() -> dict[str, Schema]:
    worker = {
        "id": "worker-a1b2c3",
        "host": "node-1",
        "pid": 4242,
        "queues": ["mail", "default"],
        "concurrency": 8,
        "in_flight": 3,
        "processed": 1520,
        "failed": 4,
        "started_at": "2030-01-01T11:00:00.000Z",
        "last_seen": "2030-01-01T12:00:00.000Z",
        "stale": False,
    }
    html: Schema = {"text/html": {"schema": {"type": "string"}}}
    return {
        "/queues": {
            "get": operation(
                "listQueues",
                "List queues with their counts",
                "queues",
                {
                    "200": success_response(
                        "A page of the known queues, sorted by name.",
                        "QueueList",
                        {
                            "queues": {
                                "items": [_queue_example()],
                                "next_cursor": None,
                                "total": 1,
                            }
                        },
                    ),
                    "422": invalid_response(
                        "An invalid, unknown or repeated query parameter.",
                        [("limit", f"must be an integer between 1 and {queue_routes.MAX_LIMIT}")],
                    ),
                },
                description=(
                    "The statistics are read at most once per stats_cache_seconds by each API "
                    "process and shared by every caller (GET /queues, /metrics): a page may be "
                    "that old (twice that while a newer read runs). One read covers the first "
                    "max_queues queues by name. Unknown query parameters are refused (422)."
                ),
                parameters=[
                    {
                        "name": "limit",
                        "in": "query",
                        "description": "Page size.",
                        "schema": {
                            "type": "integer",
                            "minimum": 1,
                            "maximum": queue_routes.MAX_LIMIT,
                            "default": queue_routes.MAX_LIMIT,
                        },
                    },
                    {
                        "name": "cursor",
                        "in": "query",
                        "description": "The next_cursor of the previous page: the page starts "
                        "after this queue name.",
                        "schema": {"type": "string", "pattern": anchored(NAME_PATTERN)},
                    },
                ],
            )
        },
        "/queues/{name}": {
            "parameters": [ref("parameters", "QueueName")],
            "get": operation(
                "getQueue",
                "Get one queue's counts",
                "queues",
                {
                    "200": success_response("The queue.", "Queue", {"queue": _queue_example()}),
                    "404": error_response(
                        "No queue has this name (or the name is invalid).",
                        {
                            "not_found": problem_example(
                                404, "queue-not-found", "Not Found", "no queue is named mail"
                            )
                        },
                    ),
                },
            ),
        },
        "/workers": {
            "get": operation(
                "listWorkers",
                "List live workers",
                "workers",
                {
                    "200": success_response(
                        "Workers.", "WorkerList", {"workers": {"items": [worker]}}
                    )
                },
            )
        },
        "/healthz": {
            "get": operation(
                "healthz",
                "Liveness: the process answers (Redis is not asked)",
                "health",
                {"200": success_response("Alive.", "Health", {"ok": {"status": "ok"}})},
                touches_redis=False,
            )
        },
        "/readyz": {
            "get": operation(
                "readyz",
                "Readiness: Redis answers too",
                "health",
                {
                    "200": success_response(
                        "Ready: Redis answers. The body shows the worker pool (at most 100 "
                        "workers), flags queues that have waiting jobs but no live worker (from "
                        "the queue statistics this process last read, see queues_age_seconds), "
                        "and warns about Redis settings that lose jobs on a restart "
                        "(appendonly off) or that could not be checked. The Redis work does not "
                        "grow with the number of queues. Without a valid token (api_auth token) "
                        'the body is only `{"status": "ready"}`.',
                        "Readiness",
                        {
                            "ready": {
                                "status": "ready",
                                "workers": [],
                                "queues": [],
                                "warnings": [],
                            },
                            "without_token": {"status": "ready"},
                        },
                    ),
                    "503": error_response(
                        "Not ready: Redis did not answer in time (`store-unavailable`), or it "
                        "runs with a setting under which it drops jobs by itself "
                        "(`redis-unsafe`: a maxmemory-policy other than noeviction).",
                        {
                            "unavailable": problem_example(
                                503,
                                "store-unavailable",
                                "Service Unavailable",
                                "the job store did not answer in time; retry later",
                            ),
                            "unsafe": problem_example(
                                503,
                                "redis-unsafe",
                                "Service Unavailable",
                                "maxmemory-policy is allkeys-lru; Conveyor needs noeviction "
                                "or jobs can be evicted",
                            ),
                        },
                        {"Retry-After": _RETRY_AFTER},
                    ),
                },
                touches_redis=False,
            )
        },
        "/metrics": {
            "get": operation(
                "metrics",
                "Prometheus metrics",
                "health",
                {
                    "200": {
                        "description": "The metrics in the Prometheus text format: jobs "
                        "created, HTTP requests by route template, and the queue gauges "
                        "(read from Redis now; left out when Redis cannot be read).",
                        "content": {
                            "text/plain": {
                                "schema": {"type": "string"},
                                "example": "# TYPE conveyor_queue_waiting gauge\n"
                                'conveyor_queue_waiting{queue="default"} 3.0\n',
                            }
                        },
                    }
                },
                description="Needs no token, like the probes. Always 200: when Redis cannot "
                "be read the queue gauges are absent.",
                touches_redis=False,
            )
        },
        "/openapi.json": {
            "get": operation(
                "openapi",
                "This document",
                "docs",
                {
                    "200": {
                        "description": "The OpenAPI 3.1 document.",
                        "content": json_content(
                            {"type": "object", "required": ["openapi", "info", "paths"]},
                            {
                                "abridged": {
                                    "openapi": OPENAPI_VERSION,
                                    "info": {"title": "Conveyor", "version": "0.1.0"},
                                    "paths": {},
                                }
                            },
                        ),
                    }
                },
                touches_redis=False,
            )
        },
        "/docs": {
            "get": operation(
                "docs",
                "Interactive documentation (Swagger UI)",
                "docs",
                {"200": {"description": "The Swagger UI page.", "content": html}},
                touches_redis=False,
            )
        },
    }


# -- the document ---------------------------------------------------------------------------


def _version() -> str:
    try:
        return metadata.version("conveyor")
    except metadata.PackageNotFoundError:  # pragma: no cover - run from a bare checkout
        return "0.0.0"


def openapi_document(settings: Any, *, bearer_auth: bool) -> dict[str, Any]:
    """The OpenAPI 3.1 document of the API as configured by `settings` (a fresh dict).

    `bearer_auth`: whether the API has tokens configured (`api.auth.Tokens.enabled`); only
    then does the document declare the bearer scheme and the operations that need it."""
    paths = {
        **_jobs_paths(settings),
        **_other_paths(),
        **openapi_queue_actions.paths(),
        **openapi_limits.paths(),
        **openapi_resize.paths(settings),
        **openapi_schedules.paths(settings),
    }
    openapi_content_type.require_json_content_type(paths)
    responses = _shared_responses(settings)
    components: dict[str, Any] = {
        "schemas": {
            **_schemas(settings),
            **openapi_queue_actions.schemas(),
            **openapi_limits.schemas(),
            **openapi_resize.schemas(settings),
            **openapi_schedules.schemas(settings),
            **openapi_content_type.schemas(),
        },
        "parameters": _parameters(),
        "responses": responses,
    }
    metrics_open = getattr(settings, "metrics_auth", "none") != "token"
    if bearer_auth:
        openapi_auth.require_bearer_auth(paths, metrics_open=metrics_open)
        responses.update(openapi_auth.auth_responses())
        components["securitySchemes"] = openapi_auth.security_schemes()
    document: dict[str, Any] = {
        "openapi": OPENAPI_VERSION,
        "info": {
            "title": "Conveyor",
            "version": _version(),
            "summary": "A distributed job processor on Redis Streams.",
            "description": (
                "Create, inspect, cancel and retry jobs; see queues and workers; define periodic "
                "schedules.\n\n"
                "Errors are RFC 9457 problem details (application/problem+json). Any request "
                "may be answered 503 (with Retry-After) while Redis is unavailable. "
                + openapi_auth.description(bearer_auth, metrics_open=metrics_open)
            ),
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "tags": [
            {"name": "jobs"},
            {"name": "queues"},
            {"name": "workers"},
            {"name": "schedules"},
            {"name": "health"},
            {"name": "docs"},
        ],
        "paths": paths,
        "components": components,
    }
    return copy.deepcopy(document)  # no shared (module-level) objects inside
