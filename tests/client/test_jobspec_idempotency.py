"""shared/jobspec.py: idempotency key validation and the request fingerprint that the API
and the client both compute."""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from conveyor import jobspec
from conveyor.errors import ValidationError

BASE: dict[str, Any] = {"type": "echo", "payload": {"b": [1, "é"], "a": None}}


def canonical(fields: dict[str, Any]) -> str:
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_fingerprint_is_the_sha256_of_the_canonical_json_of_the_request() -> None:
    full = {
        "type": "echo",
        "payload": {"b": [1, "é"], "a": None},
        "queue": "default",
        "max_attempts": None,
        "delay_seconds": None,
        "run_at": None,
        "timeout_seconds": None,
    }
    assert jobspec.fingerprint(BASE) == canonical(full)
    assert '"é"' in json.dumps(full, ensure_ascii=False)


@pytest.mark.parametrize(
    ("other", "same"),
    [
        ({"payload": {"a": None, "b": [1, "é"]}}, True),  # key order
        ({"queue": "default"}, True),  # the default queue spelled out
        ({"max_attempts": None, "run_at": None}, True),  # null = absent
        ({"correlation_id": "x", "idempotency_key": "k"}, True),  # not request fields
        ({"timeout_seconds": None}, True),
        ({"queue": "other"}, False),
        ({"type": "other"}, False),
        ({"payload": {"a": None, "b": [1, "e"]}}, False),
        ({"payload": None}, False),
        ({"max_attempts": 2}, False),
        ({"delay_seconds": 5}, False),
        ({"timeout_seconds": 5}, False),
    ],
    ids=str,
)
def test_what_changes_the_fingerprint(other: dict[str, Any], same: bool) -> None:
    assert (jobspec.fingerprint(BASE | other) == jobspec.fingerprint(BASE)) is same


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ({"timeout_seconds": 5}, {"timeout_seconds": 5.0}),
        ({"delay_seconds": 0}, {"delay_seconds": 0.0}),
        (
            {"run_at": datetime(2030, 1, 1, tzinfo=UTC)},
            {"run_at": datetime(2030, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))},
        ),
    ],
    ids=["int-float", "zero", "timezones"],
)
def test_equal_values_spelled_differently_agree(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert jobspec.fingerprint(BASE | a) == jobspec.fingerprint(BASE | b)


def test_a_payload_number_type_matters() -> None:
    assert jobspec.fingerprint(BASE | {"payload": 1}) != jobspec.fingerprint(
        BASE | {"payload": 1.0}
    )


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        (None, True),
        ("a", True),
        ("Order-7.retry_2:eu", True),
        ("x" * 255, True),
        ("x" * 256, False),
        ("", False),
        ("has space", False),
        ("slash/", False),
        ("{tag}", False),
        ("é", False),
        (7, False),
    ],
    ids=repr,
)
def test_idempotency_key_pattern(value: object, ok: bool) -> None:
    if ok:
        assert jobspec.idempotency_key(value) == value
    else:
        with pytest.raises(ValidationError) as err:
            jobspec.idempotency_key(value, "Idempotency-Key")
        assert err.value.field == "Idempotency-Key"


def test_build_carries_the_key_and_the_fingerprint_of_its_arguments() -> None:
    plain = jobspec.build("echo", {"n": 1})
    assert (plain.idempotency_key, plain.fingerprint) == (None, None)
    spec = jobspec.build("echo", {"n": 1}, delay_seconds=30, idempotency_key="k")
    assert spec.idempotency_key == "k"
    assert spec.fingerprint == jobspec.fingerprint(
        {"type": "echo", "payload": {"n": 1}, "delay_seconds": 30}
    )
    later = jobspec.build("echo", {"n": 1}, delay_seconds=30, idempotency_key="k")
    assert later.fingerprint == spec.fingerprint  # the request, not its due time
