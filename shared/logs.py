"""Logging: one line per record, JSON for machines or ``key=value`` text for people.

JSON lines hold ``ts`` (RFC 3339 UTC, milliseconds), ``level``, ``logger``, ``msg``, the
fields of the current log context (``job_id``, ``correlation_id``, ``queue``, ``type``,
``attempt``, ``worker``... when known), the ``extra=`` fields of the call, and for exceptions
``error`` and ``exc_info``.

The log context lives in ONE contextvar holding an immutable mapping: binding a field makes
a new mapping, so a task can never change what another task (or its parent) sees. asyncio
tasks start with a copy of their creator's context, and so do threads started through
`contextvars.copy_context().run` or `asyncio.to_thread`; every line they write carries the
job or request they work for without passing ids around.
"""

from __future__ import annotations

import contextvars
import json
import logging
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import MappingProxyType
from typing import Any, TextIO

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from conveyor.config_values import LOG_FORMATS, LOG_LEVELS
from conveyor.ids import ms_to_rfc3339

CONTEXT_FIELDS = ("job_id", "correlation_id", "queue", "type", "attempt", "worker")

_EMPTY: Mapping[str, object] = MappingProxyType({})
_CONTEXT: contextvars.ContextVar[Mapping[str, object]] = contextvars.ContextVar(
    "conveyor_log_context", default=_EMPTY
)

# Attributes every LogRecord has; anything else on a record is a context or `extra=` field.
# `color_message` is uvicorn's ANSI-coloured copy of the message: noise in a log line.
_RECORD_ATTRS = frozenset(
    [
        *vars(logging.LogRecord("", logging.INFO, "", 0, "", None, None)),
        *RESERVED_ATTRS,
        "message",
        "asctime",
        "taskName",
        "color_message",
    ]
)
_HANDLER_MARK = "_conveyor_handler"


# --- context -------------------------------------------------------------------------------


def current_context() -> Mapping[str, object]:
    """The fields bound in the current task or thread (read-only)."""
    return _CONTEXT.get()


def bind(**fields: object) -> contextvars.Token[Mapping[str, object]]:
    """Add `fields` to the log context of the current task; a None value removes a field.

    Returns the token for `unbind`. Prefer `log_context`, which unbinds by itself.
    """
    clash = sorted(set(fields) & _RECORD_ATTRS)
    if clash:
        raise ValueError(f"log context fields clash with LogRecord attributes: {clash}")
    merged = {**_CONTEXT.get(), **fields}
    return _CONTEXT.set(MappingProxyType({k: v for k, v in merged.items() if v is not None}))


def unbind(token: contextvars.Token[Mapping[str, object]]) -> None:
    """Restore the log context from before the `bind` that returned `token`."""
    _CONTEXT.reset(token)


@contextmanager
def log_context(**fields: object) -> Iterator[Mapping[str, object]]:
    """Bind `fields` for the duration of the block (and every task started inside it)."""
    token = bind(**fields)
    try:
        yield _CONTEXT.get()
    finally:
        unbind(token)


class ContextFilter(logging.Filter):
    """Copies the log context onto each record. On the handler, not a logger: handler
    filters also see records propagated from child loggers. `extra=` fields win."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in _CONTEXT.get().items():
            if key not in record.__dict__:
                setattr(record, key, value)
        return True


# --- formatters ----------------------------------------------------------------------------


def _timestamp(record: logging.LogRecord) -> str:
    return ms_to_rfc3339(int(record.created * 1000)) or ""


def _error_text(record: logging.LogRecord) -> str | None:
    if not record.exc_info or record.exc_info[1] is None:
        return None
    exc = record.exc_info[1]
    return str(exc) or type(exc).__name__


def _extra_fields(record: logging.LogRecord) -> dict[str, object]:
    return {
        key: value
        for key, value in record.__dict__.items()
        if key not in _RECORD_ATTRS and not key.startswith("_")
    }


class JsonLineFormatter(JsonFormatter):
    """python-json-logger's formatter with Conveyor's field names and order."""

    def __init__(self) -> None:
        # No format string: the fields are chosen in `add_fields`.
        super().__init__(fmt=(), reserved_attrs=sorted(_RECORD_ATTRS))

    def add_fields(
        self,
        log_data: dict[str, Any],
        record: logging.LogRecord,
        message_dict: dict[str, Any],
    ) -> None:
        fields: dict[str, Any] = {}
        super().add_fields(fields, record, message_dict)
        log_data["ts"] = _timestamp(record)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["msg"] = record.message
        error = _error_text(record)
        if error is not None and "error" not in fields:
            log_data["error"] = error
        traceback = fields.pop("exc_info", None)
        stack = fields.pop("stack_info", None)
        for key, value in fields.items():
            log_data.setdefault(key, value)
        if traceback is not None:
            log_data["exc_info"] = traceback
        if stack is not None:
            log_data["stack_info"] = stack


def _console_value(value: object) -> str:
    if isinstance(value, str):
        plain = value and not any(c.isspace() or c in "\"'=" for c in value)
        return value if plain else json.dumps(value, ensure_ascii=False)
    return json.dumps(value, ensure_ascii=False, default=str)


class ConsoleFormatter(logging.Formatter):
    """``ts LEVEL logger msg key=value...`` on one line, the traceback on the next ones."""

    def format(self, record: logging.LogRecord) -> str:
        record.message = record.getMessage()
        fields = _extra_fields(record)
        error = _error_text(record)
        if error is not None:
            fields.setdefault("error", error)
        line = " ".join(
            [
                _timestamp(record),
                f"{record.levelname:<7}",
                record.name,
                record.message,
                *(f"{key}={_console_value(value)}" for key, value in fields.items()),
            ]
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        if record.stack_info:
            line += "\n" + self.formatStack(record.stack_info)
        return line


# --- setup ---------------------------------------------------------------------------------


def make_handler(fmt: str, stream: TextIO | None = None) -> logging.Handler:
    """A handler writing `fmt` ("json" or "console") lines with the log context to `stream`."""
    if fmt not in LOG_FORMATS:
        raise ValueError(f"log format must be one of {', '.join(LOG_FORMATS)}, got {fmt!r}")
    handler = logging.StreamHandler(sys.stdout if stream is None else stream)
    handler.setFormatter(JsonLineFormatter() if fmt == "json" else ConsoleFormatter())
    handler.addFilter(ContextFilter())
    setattr(handler, _HANDLER_MARK, True)
    return handler


def setup_logging(level: str, fmt: str, stream: TextIO | None = None) -> None:
    """Make the root logger write `fmt` lines at `level` and above to `stream` (stdout).

    Idempotent: the root's earlier handlers are replaced, so calling it again (a CLI command
    after an import-time `basicConfig`, a test) never doubles lines.
    """
    if level.upper() not in LOG_LEVELS:
        raise ValueError(f"log level must be one of {', '.join(LOG_LEVELS)}, got {level!r}")
    handler = make_handler(fmt, stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        if getattr(old, _HANDLER_MARK, False):
            old.close()
    root.addHandler(handler)
    root.setLevel(level.upper())


def uvicorn_log_config(level: str | None = None) -> dict[str, Any]:
    """A `uvicorn.Config(log_config=...)` that sends uvicorn's records to the root handler.

    uvicorn's default config gives its loggers their own handlers and formats; this one
    removes them and lets the records propagate, so access and server lines come out in
    the same format, with the same context. Loggers configured before are left enabled.
    `level` (default: inherit the root's) applies to the three uvicorn loggers.
    """
    logger: dict[str, Any] = {"handlers": [], "propagate": True}
    if level is not None:
        logger["level"] = level.upper()
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {name: dict(logger) for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
