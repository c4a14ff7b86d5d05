"""Reading a JSON request body: bounded while it streams, parsed strictly.

The body is never read whole before its size is known to be acceptable: a Content-Length
over the limit is refused before the first byte is read, and a body without one (chunked)
is refused as soon as the bytes received pass the limit.

Parsing refuses what `json.loads` would otherwise let through: NaN/Infinity literals,
numbers that overflow to infinity, integers with absurdly many digits (their conversion is
quadratic), duplicate object keys (which one wins is undefined), and nesting deep enough to
exhaust the parser's recursion budget.

A `POST /jobs/batch` body is also refused (422 naming `jobs`) before it is parsed when it
holds more JSON values than `max_batch_jobs` jobs could need: parsing builds an object per
value, so 16 MiB of `{},` would take some 400 MB and seconds. Values are counted as the
`{`, `[` and `,` outside strings, a cheap scan of the bytes. A body over `OFF_LOOP_BYTES` is
parsed in a worker thread, one such parse at a time, so the event loop keeps answering.
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
from starlette.requests import ClientDisconnect, Request

from conveyor.api.problems import Problem
from conveyor.errors import ValidationError

ENVELOPE_BYTES = 64 * 1024  # room for the fields around the payload
BATCH_PAYLOADS = 16  # a batch body may hold this many maximal payloads...
MAX_BATCH_BODY_BYTES = 64 * 1024 * 1024  # ...but never more than this
MAX_INT_DIGITS = 1000  # far beyond any 64-bit value; longer integers are refused
BATCH_VALUES_PER_JOB = 1000  # a batch may hold this many JSON values per job it may create...
MAX_BATCH_VALUES = 1_000_000  # ...but never more than this (some 60 MB once parsed, at most)
OFF_LOOP_BYTES = 1024 * 1024  # a body larger than this is parsed in a worker thread
IGNORED_BODY_BYTES = 4096  # what an action that reads no body still accepts: `{}` and then some
T = TypeVar("T")

NOT_AN_OBJECT = "must be a JSON object (`{}`) or empty"


def body_limit(max_payload_bytes: int) -> int:
    """The most bytes a request body may have for a given payload limit."""
    return max_payload_bytes + ENVELOPE_BYTES


def batch_body_limit(max_payload_bytes: int) -> int:
    """The most bytes a `POST /jobs/batch` body may have for a given payload limit."""
    return min(max_payload_bytes * BATCH_PAYLOADS + ENVELOPE_BYTES, MAX_BATCH_BODY_BYTES)


def batch_value_limit(max_batch_jobs: int) -> int:
    """The most JSON values (`{`, `[` and `,` outside strings) a batch body may hold."""
    return min(max_batch_jobs * BATCH_VALUES_PER_JOB, MAX_BATCH_VALUES)


_STRING = re.compile(rb'"[^"]*"')  # once escapes are gone, every `"` delimits a string
_SCAN_WINDOW = 256 * 1024  # bytes per regular-expression call (each holds the GIL)
_OFF_LOOP_PARSES = threading.BoundedSemaphore(1)  # large bodies are parsed one at a time


def count_values(data: bytes, stop_above: int | None = None) -> int:
    """The `{`, `[` and `,` of a JSON text outside its strings; the count so far once it
    passes `stop_above`. Exact for valid JSON; for invalid JSON, exact up to the first
    error (where `json.loads` stops too)."""
    # Escapes are pairs read left to right, as `bytes.replace` reads: without `\\` and
    # then `\"`, every `"` left opens or closes a string.
    text = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    count = 0
    pos = 0
    while pos < len(text):
        end = min(pos + _SCAN_WINDOW, len(text))
        if text.count(b'"', pos, end) % 2:  # the window would end inside a string
            close = text.find(b'"', end)
            end = len(text) if close < 0 else close + 1
        outside = _STRING.sub(b"", text[pos:end])
        count += outside.count(b"{") + outside.count(b"[") + outside.count(b",")
        if stop_above is not None and count > stop_above:
            break
        pos = end
    return count


def holds_at_most(data: bytes, values: int) -> bool:
    """Whether a JSON text holds at most `values` values, as `count_values` counts them."""
    if data.count(b"{") + data.count(b"[") + data.count(b",") <= values:
        return True  # counting those inside strings too, it is within: no need to look closer
    return count_values(data, stop_above=values) <= values


def is_json_media_type(content_type: str | None) -> bool:
    """``application/json``, optionally with parameters; a charset must be UTF-8."""
    if not content_type:
        return False
    media, *params = content_type.split(";")
    if media.strip().lower() != "application/json":
        return False
    for param in params:
        name, _, value = param.partition("=")
        charset = value.strip().strip('"').lower()
        if name.strip().lower() == "charset" and charset not in ("utf-8", "utf8"):
            return False
    return True


def too_large(limit: int) -> Problem:
    return Problem(
        413,
        "request-too-large",
        "Content Too Large",
        f"the request body is larger than {limit} bytes",
    )


def bad_json(detail: str) -> Problem:
    return Problem(400, "malformed-json", "Bad Request", detail)


async def read_body(request: Request, limit: int) -> bytes:
    """The raw body, refused with 413 as soon as it is known to exceed `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None:
        declared = declared.strip()
        if not declared.isascii() or not declared.isdigit():
            raise Problem(400, "bad-request", "Bad Request", "invalid Content-Length header")
        if int(declared) > limit:
            raise too_large(limit)
    # Chunks are kept as they come and joined once: growing one buffer would copy it each
    # time it outgrows its allocation, holding old and new copies (up to 2x the limit).
    chunks: list[bytes] = []
    size = 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size > limit:
                raise too_large(limit)
            chunks.append(chunk)
    except ClientDisconnect:
        raise Problem(
            400, "bad-request", "Bad Request", "the client disconnected mid-body"
        ) from None
    return b"".join(chunks)


class _Refused(ValueError):
    """A JSON text that is syntactically valid but not acceptable."""


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    obj: dict[str, Any] = {}
    for key, value in pairs:
        if key in obj:
            raise _Refused(f"duplicate object key {json.dumps(key[:100])}")
        obj[key] = value
    return obj


def _constant(name: str) -> Any:
    raise _Refused(f"{name} is not a JSON number")


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise _Refused("a number is too large to be represented")
    return value


def _int(text: str) -> int:
    if len(text) > MAX_INT_DIGITS:
        raise _Refused(f"an integer has more than {MAX_INT_DIGITS} digits")
    return int(text)


def parse_json(data: bytes) -> Any:
    """The JSON value of a UTF-8 body; `Problem` 400 for anything malformed or refused."""
    if not data.strip():
        raise bad_json("the request body is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise bad_json(f"the request body is not valid UTF-8 (at byte {exc.start})") from None
    try:
        return json.loads(
            text,
            object_pairs_hook=_object,
            parse_constant=_constant,
            parse_float=_float,
            parse_int=_int,
        )
    except json.JSONDecodeError as exc:
        raise bad_json(
            f"malformed JSON at line {exc.lineno} column {exc.colno}: {exc.msg}"
        ) from None
    except _Refused as exc:
        raise bad_json(str(exc)) from None
    except RecursionError:
        raise bad_json("the JSON document is nested too deeply") from None
    except ValueError:  # e.g. an integer beyond the interpreter's digit limit
        raise bad_json("the JSON document holds a value that cannot be represented") from None


def _parse_counted(data: bytes, max_values: int | None, values_field: str) -> Any:
    if max_values is not None and not holds_at_most(data, max_values):
        raise ValidationError(
            values_field,
            f"must hold at most {max_values} JSON values in all "
            f"(each object, array and comma counts; {BATCH_VALUES_PER_JOB} per job "
            f"max_batch_jobs allows, at most {MAX_BATCH_VALUES})",
        )
    return parse_json(data)


def _one_at_a_time(fn: Callable[..., T], *args: Any) -> T:
    with _OFF_LOOP_PARSES:
        return fn(*args)


async def off_loop_if_large(size: int, fn: Callable[..., T], *args: Any) -> T:
    """`fn(*args)`; in a worker thread, one such call at a time, when it works on a body of
    more than `OFF_LOOP_BYTES`, so that the event loop goes on answering meanwhile."""
    if size <= OFF_LOOP_BYTES:
        return fn(*args)
    return await anyio.to_thread.run_sync(_one_at_a_time, fn, *args)


async def read_json_body(request: Request, limit: int) -> bytes:
    """The raw body of a JSON request: 415 unless it is application/json, 413 over `limit`."""
    if not is_json_media_type(request.headers.get("content-type")):
        raise Problem(
            415,
            "unsupported-media-type",
            "Unsupported Media Type",
            "the request body must be application/json",
        )
    return await read_body(request, limit)


async def parse_object(
    data: bytes, *, max_values: int | None = None, values_field: str = "body"
) -> dict[str, Any]:
    """A body as a JSON object: 400 or 422 when it is not one (422 naming `values_field`
    when it holds more than `max_values` JSON values)."""
    value = await off_loop_if_large(len(data), _parse_counted, data, max_values, values_field)
    if not isinstance(value, dict):
        raise ValidationError("body", "must be a JSON object")
    return value


async def read_json_object(request: Request, limit: int) -> dict[str, Any]:
    """The body of a JSON request as an object: 415, 413, 400 or 422 when it is not one."""
    return await parse_object(await read_json_body(request, limit))


async def check_ignored_body(request: Request) -> None:
    """The body of an action that reads none (cancel, retry, purge, retry-failed): empty,
    or a JSON object, which is ignored. Anything else is refused (413, 400, or 422 naming
    `body`) before the action changes anything, as the OpenAPI document declares."""
    data = await read_body(request, IGNORED_BODY_BYTES)
    if not data.strip():
        return
    if not isinstance(parse_json(data), dict):
        raise ValidationError("body", NOT_AN_OBJECT)
