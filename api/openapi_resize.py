"""The OpenAPI description of resizing running workers (`api.routes.workers`:
``PUT /workers/{id}/concurrency`` and ``PUT /queues/{name}/concurrency``, ADR 16). Merged
into the document by `api.openapi.openapi_document`, which imports this module."""

from __future__ import annotations

from typing import Any

from conveyor import jobspec
from conveyor.api.openapi_parts import (
    JSON,
    Schema,
    error_response,
    invalid_response,
    operation,
    problem_example,
    ref,
    schema_ref,
    success_response,
)
from conveyor.api.routes.workers import RESIZE_BODY_BYTES


def schemas(settings: Any) -> dict[str, Schema]:
    maximum = getattr(settings, "max_concurrency", jobspec.MAX_CONCURRENCY)
    size: Schema = {"type": ["integer", "null"], "minimum": 1, "maximum": maximum}
    return {
        "ConcurrencyRequest": {
            "type": "object",
            "properties": {
                "concurrency": {
                    **size,
                    "description": f"Jobs run at once, 1 to {maximum} (max_concurrency); "
                    "null clears the value asked before.",
                }
            },
            "required": ["concurrency"],
            "additionalProperties": False,
        },
        "WorkerConcurrency": {
            "type": "object",
            "properties": {"worker": {"type": "string"}, "concurrency": size},
            "required": ["worker", "concurrency"],
        },
        "QueueConcurrency": {
            "type": "object",
            "properties": {"queue": {"type": "string"}, "concurrency": size},
            "required": ["queue", "concurrency"],
        },
    }


def _body() -> Schema:
    return {
        "required": True,
        "content": {
            JSON: {
                "schema": schema_ref("ConcurrencyRequest"),
                "examples": {"grow": {"value": {"concurrency": 32}}},
            }
        },
    }


def _common(maximum: int) -> dict[str, Schema]:
    return {
        "400": ref("responses", "MalformedJson"),
        "413": error_response(
            f"The body is larger than {RESIZE_BODY_BYTES} bytes; nothing was changed.",
            {
                "too_large": problem_example(
                    413,
                    "request-too-large",
                    "Content Too Large",
                    f"the request body is larger than {RESIZE_BODY_BYTES} bytes",
                )
            },
        ),
        "422": invalid_response(
            "The body is not an object, or concurrency is missing, not an integer in range "
            "or null, or another field is given. Nothing was changed.",
            [("concurrency", f"must be an integer from 1 to {maximum}, or null")],
        ),
    }


def paths(settings: Any) -> dict[str, Schema]:
    maximum = getattr(settings, "max_concurrency", jobspec.MAX_CONCURRENCY)
    worker_id: Schema = {
        "name": "worker_id",
        "in": "path",
        "required": True,
        "description": "A live worker's id (GET /workers).",
        "schema": {"type": "string", "pattern": f"^{jobspec.WORKER_ID.pattern}$"},
    }
    return {
        "/workers/{worker_id}/concurrency": {
            "parameters": [worker_id],
            "put": operation(
                "resizeWorker",
                "Change a running worker's concurrency",
                "workers",
                {
                    "200": success_response(
                        "Asked: the worker runs that many jobs at once within a second (its "
                        "GET /workers entry then shows it). Growing starts more jobs at once; "
                        "shrinking lets running jobs finish and starts none beyond the new "
                        "size. A value above the worker's own max_concurrency is cut to it.",
                        "WorkerConcurrency",
                        {"asked": {"worker": "host-4711-a1b2c3", "concurrency": 32}},
                    ),
                    "404": error_response(
                        "No live worker has this id; nothing was written.",
                        {"not_found": problem_example(404, "worker-not-found", "Not Found", None)},
                    ),
                    **_common(maximum),
                },
                description="The worker's own value wins over its queue's (PUT "
                "/queues/{name}/concurrency); null returns it to that, or to the "
                "concurrency it was started with. It goes with the worker.",
                body=_body(),
            ),
        },
        "/queues/{name}/concurrency": {
            "parameters": [ref("parameters", "QueueName")],
            "put": operation(
                "resizeQueueWorkers",
                "Change the concurrency of every worker of a queue",
                "workers",
                {
                    "200": success_response(
                        "Asked: every worker reading this queue (as its first queue with a "
                        "value, in its --queues order) runs that many jobs at once within a "
                        "second, unless asked a value of its own. Kept until cleared (null).",
                        "QueueConcurrency",
                        {"asked": {"queue": "mail", "concurrency": 8}},
                    ),
                    "404": error_response(
                        "No queue has this name (or the name is invalid).",
                        {"not_found": problem_example(404, "queue-not-found", "Not Found", None)},
                    ),
                    **_common(maximum),
                },
                body=_body(),
            ),
        },
    }
