"""Payload and result encoding.

Payloads arrive as JSON values and are kept in the job hash as msgpack (compact, and the
worker never evaluates anything: no pickle). Only JSON types are accepted, so what goes in
is exactly what the API can give back.
"""

from __future__ import annotations

import json
import math
from typing import Any

import msgpack

from conveyor.errors import PayloadTooLarge, ValidationError

JsonValue = Any  # None | bool | int | float | str | list[JsonValue] | dict[str, JsonValue]

MAX_DEPTH = 64
INT_MIN, INT_MAX = -(2**63), 2**64 - 1  # what msgpack can carry


def check_json_value(value: object, field: str, depth: int = 0) -> None:
    """Raise `ValidationError` unless `value` is a finite JSON value msgpack can carry.

    Lone surrogates in strings are left to `encode`: msgpack refuses them while packing,
    which costs nothing extra, where searching every string first took as long as the
    rest of the check and the packing together for a large text payload."""
    if depth > MAX_DEPTH:
        raise ValidationError(field, f"is nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, list):
        for item in value:
            check_json_value(item, field, depth + 1)
    elif isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise ValidationError(field, "has a non-string object key")
            check_json_value(item, field, depth + 1)
    else:
        _check_scalar(value, field)


def _check_scalar(value: object, field: str) -> None:
    if value is None or isinstance(value, bool | str):
        return
    if isinstance(value, int):
        if not INT_MIN <= value <= INT_MAX:
            raise ValidationError(field, "holds an integer outside the 64-bit range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValidationError(field, "holds NaN or Infinity")
    else:
        raise ValidationError(field, f"holds a {type(value).__name__}, which is not a JSON value")


def encode(value: JsonValue, *, field: str = "payload", limit: int | None = None) -> bytes:
    """msgpack bytes of a JSON value; `PayloadTooLarge` when they exceed `limit`."""
    check_json_value(value, field)
    try:
        data: bytes = msgpack.packb(value, use_bin_type=True)
    except UnicodeEncodeError:  # a string (or key) with a lone surrogate: no UTF-8 for it
        raise ValidationError(
            field, "holds a lone UTF-16 surrogate, which is not valid Unicode"
        ) from None
    except (ValueError, OverflowError, TypeError) as exc:  # pragma: no cover - checked above
        raise ValidationError(field, str(exc)) from None
    if limit is not None and len(data) > limit:
        raise PayloadTooLarge(field, f"is {len(data)} bytes encoded, more than {limit}")
    return data


def decode(data: bytes | None) -> JsonValue:
    """The JSON value behind msgpack bytes; None for a missing field.

    `unpackb` bounds every container and string by the input's own length, so a hostile
    header cannot make it allocate more than the bytes it was given.
    """
    if data is None or data == b"":
        return None
    return msgpack.unpackb(data, raw=False, strict_map_key=True)


def to_json_bytes(value: JsonValue) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
