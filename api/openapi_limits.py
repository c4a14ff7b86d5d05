"""The OpenAPI description of `api.routes.limits`: a queue's concurrency and rate limits
per limit key (ADR 0017). Merged into the document by `api.openapi.openapi_document`."""

from __future__ import annotations

from conveyor.api.openapi_parts import (
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
from conveyor.api.routes.limits import LIMIT_BODY_BYTES
from conveyor.store.limits import (
    LIMIT_KEY_PATTERN,
    MAX_BURST,
    MAX_PER_SECOND,
    MAX_RUNNING,
    MIN_PER_SECOND,
)


def _settings() -> dict[str, Schema]:
    return {
        "max_running": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_RUNNING,
            "description": "At most this many jobs under the key run at once, across every "
            "worker. A job over it waits, pending and uncharged, holding no worker slot, "
            "and starts as soon as a slot frees.",
        },
        "max_per_second": {
            "type": "number",
            "minimum": MIN_PER_SECOND,
            "maximum": MAX_PER_SECOND,
            "description": "Starts of jobs under the key are spread to this rate (GCRA, by "
            "Redis's clock). A job over it is scheduled, uncharged, for its reserved start.",
        },
        "burst": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_BURST,
            "description": "With max_per_second: how many may start at once after a quiet "
            "spell. Default 1.",
        },
    }


def schemas() -> dict[str, Schema]:
    count: Schema = {"type": "integer", "minimum": 0}
    settings = _settings()
    return {
        "LimitSettings": {
            "type": "object",
            "description": "At least one of max_running and max_per_second; burst only with "
            "max_per_second.",
            "properties": settings,
            "additionalProperties": False,
            "anyOf": [{"required": ["max_running"]}, {"required": ["max_per_second"]}],
            "dependentRequired": {"burst": ["max_per_second"]},
        },
        "Limit": {
            "type": "object",
            "properties": {
                "queue": {"type": "string"},
                "key": {"type": "string"},
                **settings,
            },
            "required": ["queue", "key"],
        },
        "LimitState": {
            "type": "object",
            "properties": {
                "key": {"type": "string"},
                **settings,
                "running": {
                    **count,
                    "description": "Slots held now (a dead worker's until its lease ends).",
                },
                "held": {**count, "description": "Jobs waiting for a slot."},
            },
            "required": ["key", "running", "held"],
        },
        "LimitList": {
            "type": "object",
            "properties": {
                "queue": {"type": "string"},
                "limits": {
                    "type": "array",
                    "description": "Every limit key of the queue, by name.",
                    "items": schema_ref("LimitState"),
                },
            },
            "required": ["queue", "limits"],
        },
    }


def _key_parameter() -> Schema:
    return {
        "name": "key",
        "in": "path",
        "required": True,
        "description": "`queue` (every job of the queue), `type:<job type>`, or a value "
        "jobs carry in `limit_key`.",
        "schema": {"type": "string", "pattern": anchored(LIMIT_KEY_PATTERN)},
    }


def paths() -> dict[str, Schema]:
    name = ref("parameters", "QueueName")
    bad_name = ("name", "must match [A-Za-z0-9._-]{1,64}")
    example = {"queue": "mail", "key": "type:email.send", "max_running": 10}
    return {
        "/queues/{name}/limits": {
            "parameters": [name],
            "get": operation(
                "listQueueLimits",
                "The concurrency and rate limits of a queue",
                "queues",
                {
                    "200": success_response(
                        "Every limit key of the queue with its running slots and held jobs "
                        "(an empty list when none is set, also for a queue without jobs).",
                        "LimitList",
                        {
                            "limits": {
                                "queue": "mail",
                                "limits": [
                                    {
                                        "key": "queue",
                                        "max_per_second": 50.0,
                                        "running": 0,
                                        "held": 0,
                                    },
                                    {"key": "tenant-42", "max_running": 2, "running": 2, "held": 7},
                                ],
                            }
                        },
                    ),
                    "422": invalid_response(
                        "An invalid queue name, or a query parameter.", [bad_name]
                    ),
                },
            ),
        },
        "/queues/{name}/limits/{key}": {
            "parameters": [name, _key_parameter()],
            "put": operation(
                "putQueueLimit",
                "Set the limits of one key of a queue",
                "queues",
                {
                    "200": success_response(
                        "The key's limits were replaced.", "Limit", {"limit": example}
                    ),
                    "201": success_response(
                        "The key had no limits; it has now.", "Limit", {"limit": example}
                    ),
                    "409": error_response(
                        "The queue has max_limits_per_queue limit keys already; nothing was "
                        "written.",
                        {"full": problem_example(409, "limit-count", "Conflict", None)},
                    ),
                    "400": ref("responses", "MalformedJson"),
                    "413": error_response(
                        f"The body is over {LIMIT_BODY_BYTES} bytes.",
                        {
                            "too_large": problem_example(
                                413, "payload-too-large", "Content Too Large", None
                            )
                        },
                    ),
                    "422": invalid_response(
                        "An invalid queue name, key or setting.",
                        [("max_running", f"must be an integer from 1 to {MAX_RUNNING}")],
                    ),
                },
                description="Raising a concurrency limit starts held jobs at once; held "
                "jobs of a key whose concurrency limit is removed start too.",
                body={
                    "required": True,
                    "content": json_content(
                        schema_ref("LimitSettings"), {"limit": {"max_running": 10}}
                    ),
                },
            ),
            "delete": operation(
                "deleteQueueLimit",
                "Remove the limits of one key of a queue",
                "queues",
                {
                    "204": {"description": "Removed; the jobs it held start."},
                    "404": error_response(
                        "The key has no limits.",
                        {"not_found": problem_example(404, "limit-not-found", "Not Found", None)},
                    ),
                    "422": invalid_response("An invalid queue name or key.", [bad_name]),
                },
            ),
        },
    }
