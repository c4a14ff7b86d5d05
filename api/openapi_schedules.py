"""The OpenAPI description of `api.routes.schedules`: periodic schedules. Merged into the
document by `api.openapi.openapi_document`, which imports this module (never the other
way)."""

from __future__ import annotations

from typing import Any

from conveyor.api.openapi_parts import (
    Schema,
    anchored,
    error_response,
    invalid_response,
    operation,
    problem_example,
    ref,
    schema_ref,
    success_response,
)
from conveyor.ids import JOB_ID_PATTERN, NAME_PATTERN
from conveyor.jobspec import MAX_ATTEMPTS, MAX_TIMEOUT_SECONDS
from conveyor.schedules import MAX_CRON_LENGTH, MAX_EVERY_SECONDS, CatchUp, Overlap

_TIME: Schema = {"type": "string", "format": "date-time"}
_OPTIONAL_TIME: Schema = {"type": ["string", "null"], "format": "date-time"}
_NAME: Schema = {"type": "string", "pattern": anchored(NAME_PATTERN)}


def _definition(settings: Any) -> dict[str, Schema]:
    return {
        "type": {**_NAME, "description": "The job type of the jobs it creates."},
        "payload": {"description": "The payload of every job it creates (any JSON value)."},
        "queue": {**_NAME, "default": "default"},
        "cron": {
            "type": "string",
            "maxLength": MAX_CRON_LENGTH,
            "description": "A cron expression: 5 fields (minute hour day-of-month month "
            "day-of-week), or 6 with leading seconds. Exactly one of cron and every_seconds.",
        },
        "timezone": {
            "type": "string",
            "default": "UTC",
            "description": "The IANA time zone cron is read in (cron only).",
        },
        "every_seconds": {
            "type": "integer",
            "minimum": 1,
            "maximum": MAX_EVERY_SECONDS,
            "description": "Fire at every multiple of this many seconds since the Unix "
            "epoch. Exactly one of cron and every_seconds.",
        },
        "max_attempts": {"type": "integer", "minimum": 1, "maximum": MAX_ATTEMPTS},
        "timeout_seconds": {
            "type": "number",
            "exclusiveMinimum": 0,
            "maximum": MAX_TIMEOUT_SECONDS,
        },
        "overlap": {
            "type": "string",
            "enum": [o.value for o in Overlap],
            "default": Overlap.ALLOW.value,
            "description": "skip: no job for a fire time while the schedule's last job is "
            "not finished.",
        },
        "catch_up": {
            "type": "string",
            "enum": [c.value for c in CatchUp],
            "default": CatchUp.ONE.value,
            "description": "What fire times missed while no scheduler ran (older than "
            f"schedule_grace_seconds, {settings.schedule_grace_seconds} s, when a scheduler "
            "reaches them) get: one job for all of them, or none.",
        },
    }


def _nullable(field: Schema) -> Schema:
    """An optional field of the definition: null means not given (its default applies)."""
    out = dict(field)
    if "type" in out:
        out["type"] = [out["type"], "null"]
    if "enum" in out:
        out["enum"] = [*out["enum"], None]
    return out


def schemas(settings: Any) -> dict[str, Schema]:
    definition = {
        k: v if k in ("type", "payload") else _nullable(v) for k, v in _definition(settings).items()
    }
    shown: dict[str, Schema] = {
        "name": _NAME,
        **{k: v for k, v in _definition(settings).items() if k not in ("cron", "every_seconds")},
        "cron": {"type": ["string", "null"]},
        "timezone": {"type": ["string", "null"], "description": "null for every_seconds."},
        "every_seconds": {"type": ["integer", "null"], "minimum": 1},
        "max_attempts": {"type": ["integer", "null"], "minimum": 1},
        "timeout_seconds": {"type": ["number", "null"], "exclusiveMinimum": 0},
        "next_run_at": {**_TIME, "description": "Its next fire time."},
        "last_run_at": {
            **_OPTIONAL_TIME,
            "description": "The latest fire time that got a job; null: none yet.",
        },
        "last_job_id": {
            "type": ["string", "null"],
            "pattern": anchored(JOB_ID_PATTERN),
            "description": "The job of last_run_at.",
        },
        "created_at": _TIME,
        "updated_at": _TIME,
    }
    for name in ("queue", "timezone", "overlap", "catch_up"):
        shown[name] = {k: v for k, v in shown[name].items() if k != "default"}
    return {
        "ScheduleDefinition": {
            "type": "object",
            "description": "A periodic schedule (an optional field given as null takes its "
            "default). Each fire time creates exactly one job "
            "(its id derived from the schedule's name and the fire time), whatever the "
            "number of schedulers; the job's `schedule` names the schedule.",
            "properties": definition,
            "required": ["type"],
            "additionalProperties": False,
            # cron and every_seconds exclude each other (a null one counts as absent).
            "not": {
                "properties": {"cron": {"type": "string"}, "every_seconds": {"type": "integer"}},
                "required": ["cron", "every_seconds"],
            },
            # ... and one of them is given.
            "anyOf": [
                {"properties": {"cron": {"type": "string"}}, "required": ["cron"]},
                {
                    "properties": {"every_seconds": {"type": "integer"}},
                    "required": ["every_seconds"],
                },
            ],
        },
        "Schedule": {"type": "object", "properties": shown, "required": list(shown)},
        "ScheduleList": {
            "type": "object",
            "properties": {
                "items": {"type": "array", "items": schema_ref("Schedule")},
                "total": {"type": "integer", "minimum": 0},
            },
            "required": ["items", "total"],
        },
    }


_EXAMPLE = {
    "name": "nightly-report",
    "type": "report.daily",
    "queue": "reports",
    "payload": {"format": "pdf"},
    "cron": "0 2 * * *",
    "timezone": "Europe/Paris",
    "every_seconds": None,
    "max_attempts": 3,
    "timeout_seconds": 600.0,
    "overlap": "skip",
    "catch_up": "one",
    "next_run_at": "2030-01-02T01:00:00.000Z",
    "last_run_at": "2030-01-01T01:00:00.000Z",
    "last_job_id": "01J9Z8Q4X3K5M7N2P6R8T0V1W3",
    "created_at": "2029-12-01T10:00:00.000Z",
    "updated_at": "2029-12-01T10:00:00.000Z",
}


def _not_found() -> Schema:
    return error_response(
        "No schedule has this name (or the name is invalid).",
        {
            "not_found": problem_example(
                404, "schedule-not-found", "Not Found", "no schedule is named nightly-report"
            )
        },
    )


def paths(settings: Any) -> dict[str, Schema]:
    name: Schema = {
        "name": "name",
        "in": "path",
        "required": True,
        "description": "The schedule's name.",
        "schema": _NAME,
    }
    body = {
        "required": True,
        "content": {
            "application/json": {
                "schema": schema_ref("ScheduleDefinition"),
                "examples": {
                    "cron": {
                        "value": {
                            k: _EXAMPLE[k]
                            for k in ("type", "queue", "payload", "cron", "timezone", "overlap")
                        }
                    },
                    "every": {"value": {"type": "metrics.flush", "every_seconds": 30}},
                },
            }
        },
    }
    return {
        "/schedules": {
            "get": operation(
                "listSchedules",
                "List periodic schedules",
                "schedules",
                {
                    "200": success_response(
                        f"Every schedule, by name (at most max_schedules, "
                        f"{settings.max_schedules}).",
                        "ScheduleList",
                        {"schedules": {"items": [_EXAMPLE], "total": 1}},
                    ),
                    "422": invalid_response(
                        "A query parameter (this route takes none).",
                        [("limit", "is not a known query parameter")],
                    ),
                },
            )
        },
        "/schedules/{name}": {
            "parameters": [name],
            "get": operation(
                "getSchedule",
                "Read a periodic schedule",
                "schedules",
                {
                    "200": success_response("The schedule.", "Schedule", {"schedule": _EXAMPLE}),
                    "404": _not_found(),
                },
            ),
            "put": operation(
                "putSchedule",
                "Create or replace a periodic schedule",
                "schedules",
                {
                    "201": {
                        **success_response("Created.", "Schedule", {"created": _EXAMPLE}),
                        "headers": {
                            "Location": {
                                "description": "The schedule's address.",
                                "schema": {"type": "string"},
                            }
                        },
                    },
                    "200": success_response(
                        "Replaced. A replace that keeps the timing (cron and timezone, or "
                        "every_seconds) keeps next_run_at; another timing fires next at its "
                        "first fire time from now.",
                        "Schedule",
                        {"replaced": _EXAMPLE},
                    ),
                    "400": ref("responses", "MalformedJson"),
                    "409": error_response(
                        "A new schedule while max_schedules exist; nothing was written.",
                        {
                            "limit": problem_example(
                                409,
                                "schedule-limit",
                                "Conflict",
                                "at most 1000 schedules may exist (CONVEYOR_MAX_SCHEDULES)",
                            )
                        },
                    ),
                    "413": ref("responses", "JobTooLarge"),
                    "422": invalid_response(
                        "Invalid fields (each is named in errors), or an unknown field; "
                        "nothing was written.",
                        [
                            (
                                "cron",
                                "must be a cron expression of 5 fields, or 6 with leading "
                                "seconds (Bad minute)",
                            )
                        ],
                    ),
                },
                body=body,
            ),
            "delete": operation(
                "deleteSchedule",
                "Delete a periodic schedule",
                "schedules",
                {
                    "204": {"description": "Deleted; the jobs it created stay."},
                    "404": _not_found(),
                },
            ),
        },
    }
