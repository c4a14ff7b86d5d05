"""Job ids and names (shared/ids.py), payload encoding (shared/codec.py), and the Job
entity read from a job hash (shared/job.py)."""

from __future__ import annotations

import json
import math
import time
from datetime import UTC, datetime
from typing import Any

import msgpack
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from ulid import ULID

from conveyor import codec
from conveyor.errors import PayloadTooLarge, ValidationError
from conveyor.ids import (
    NAME_PATTERN,
    job_id_bound,
    job_id_time_ms,
    ms_to_datetime,
    ms_to_rfc3339,
    new_job_id,
    validate_job_id,
    validate_job_type,
    validate_name,
    validate_queue,
)
from conveyor.job import Attempt, Job, Outcome, parse_history
from conveyor.states import Status

# -- job ids --------------------------------------------------------------------------------


def test_new_ids_are_valid_ulids_carrying_the_creation_time() -> None:
    before = int(time.time() * 1000)
    job_id = new_job_id()
    after = int(time.time() * 1000)
    assert validate_job_id(job_id) == job_id
    assert len(job_id) == 26
    assert before <= job_id_time_ms(job_id) <= after
    assert str(ULID.from_str(job_id)) == job_id


def test_ids_made_one_after_another_sort_by_creation_time() -> None:
    made = [new_job_id() for _ in range(2000)]
    times = [job_id_time_ms(i) for i in made]
    assert times == sorted(times)
    assert [job_id_time_ms(i) for i in sorted(made)] == times
    assert len(set(made)) == len(made)


@settings(max_examples=200)
@given(st.lists(st.integers(min_value=0, max_value=2**48 - 1), min_size=2, max_size=20))
def test_ids_sort_by_their_time(times: list[int]) -> None:
    made = [(ms, str(ULID.from_timestamp(ms))) for ms in times]
    by_text = sorted(made, key=lambda t: t[1])
    assert [ms for ms, _ in by_text] == sorted(times)
    assert all(job_id_time_ms(i) == ms for ms, i in made)


@pytest.mark.parametrize(
    "value",
    [
        "",
        "01ARZ3NDEKTSV4RRFFQ69G5FA",  # 25 characters
        "01ARZ3NDEKTSV4RRFFQ69G5FAVV",  # 27
        "01arz3ndektsv4rrffq69g5fav",  # lower case
        "81ARZ3NDEKTSV4RRFFQ69G5FAV",  # first character above 7: more than 128 bits
        "01ARZ3NDEKTSV4RRFFQ69G5FAI",  # I, L, O, U are not Crockford base32
        "01ARZ3NDEKTSV4RRFFQ69G5FAU",
        "01ARZ3NDEKTSV4RRFFQ69G5FA}",
        None,
        123,
        b"01ARZ3NDEKTSV4RRFFQ69G5FAV",
    ],
)
def test_invalid_job_ids_are_refused(value: object) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_job_id(value, "job_id")
    assert exc.value.field == "job_id"


def test_a_valid_literal_id_is_accepted() -> None:
    assert validate_job_id("01ARZ3NDEKTSV4RRFFQ69G5FAV") == "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert validate_job_id("7ZZZZZZZZZZZZZZZZZZZZZZZZZ") == "7ZZZZZZZZZZZZZZZZZZZZZZZZZ"


@settings(max_examples=300)
@given(ms=st.integers(min_value=0, max_value=2**48 - 1))
def test_id_bounds_are_the_lowest_and_highest_id_of_one_millisecond(ms: int) -> None:
    low, high = job_id_bound(ms, upper=False), job_id_bound(ms, upper=True)
    assert validate_job_id(low) == low
    assert validate_job_id(high) == high
    assert low[:10] == high[:10]
    assert (low[10:], high[10:]) == ("0" * 16, "Z" * 16)
    assert job_id_time_ms(low) == job_id_time_ms(high)


@pytest.mark.parametrize("ms", [1_700_000_000_000, 1_795_926_853_190, 1, 1000])
@pytest.mark.parametrize("random_part", [bytes(10), b"\xff" * 10, bytes(range(10))])
def test_id_bounds_enclose_exactly_the_ids_of_their_millisecond(
    ms: int, random_part: bytes
) -> None:
    def at(t: int) -> str:
        return str(ULID.from_bytes(t.to_bytes(6, "big") + random_part))

    low, high = job_id_bound(ms, upper=False), job_id_bound(ms, upper=True)
    assert at(ms - 1) < low <= at(ms) <= high < at(ms + 1)
    assert job_id_time_ms(low) == ms


@pytest.mark.parametrize("ms", [4095, 33_761_847_962, 2_147_486_470_022])
def test_id_bounds_are_exact_for_every_millisecond(ms: int) -> None:
    assert job_id_time_ms(job_id_bound(ms, upper=False)) == ms


# -- names --------------------------------------------------------------------------------


@settings(max_examples=200)
@given(st.from_regex(NAME_PATTERN, fullmatch=True))
def test_names_of_the_allowed_alphabet_are_accepted(name: str) -> None:
    assert validate_name(name, "queue") == name
    assert validate_queue(name) == name
    assert validate_job_type(name) == name


@pytest.mark.parametrize("name", ["a", "A-z_0.9", "x" * 64, "...", "-", "default"])
def test_name_examples_are_accepted(name: str) -> None:
    assert validate_name(name, "type") == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        "x" * 65,
        "a{b",
        "a}b",
        "{q}",
        "a:b",
        "a/b",
        "a b",
        " a",
        "a\n",
        "a\tb",
        "é",
        "a*",
        None,
        5,
        b"abc",
        ["a"],
    ],
)
def test_names_that_could_break_a_key_are_refused(name: object) -> None:
    with pytest.raises(ValidationError) as exc:
        validate_name(name, "jobs/2/queue")
    assert exc.value.field == "jobs/2/queue"
    assert NAME_PATTERN in exc.value.message


def test_queue_and_type_name_the_field() -> None:
    with pytest.raises(ValidationError) as q:
        validate_queue("a:b")
    with pytest.raises(ValidationError) as t:
        validate_job_type("a:b")
    assert (q.value.field, t.value.field) == ("queue", "type")


# -- codec --------------------------------------------------------------------------------

json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=10), children, max_size=5)
    ),
    max_leaves=30,
)


@settings(max_examples=300)
@given(json_values)
def test_json_values_round_trip(value: Any) -> None:
    data = codec.encode(value)
    assert isinstance(data, bytes)
    assert codec.decode(data) == value
    assert json.loads(codec.to_json_bytes(codec.decode(data))) == value


@pytest.mark.parametrize(
    "value", [2**63 - 1, 2**63, 2**64 - 1, -(2**63), 0, -1, 1.5, -0.0, "", "é\u2028😀"]
)
def test_edge_scalars_round_trip(value: Any) -> None:
    assert codec.decode(codec.encode(value)) == value


def test_nothing_decodes_to_none() -> None:
    assert codec.decode(None) is None
    assert codec.decode(b"") is None


def nested(depth: int, make: Any = lambda v: [v]) -> Any:
    value: Any = 1
    for _ in range(depth):
        value = make(value)
    return value


@pytest.mark.parametrize("make", [lambda v: [v], lambda v: {"k": v}], ids=["list", "dict"])
def test_nesting_is_limited(make: Any) -> None:
    assert codec.decode(codec.encode(nested(codec.MAX_DEPTH, make))) == nested(
        codec.MAX_DEPTH, make
    )
    with pytest.raises(ValidationError, match="nested deeper"):
        codec.encode(nested(codec.MAX_DEPTH + 1, make))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (math.nan, "NaN or Infinity"),
        (math.inf, "NaN or Infinity"),
        (-math.inf, "NaN or Infinity"),
        ({"a": [1, math.nan]}, "NaN or Infinity"),
        (2**64, "64-bit range"),
        (-(2**63) - 1, "64-bit range"),
        (10**100, "64-bit range"),
        ({1: "a"}, "non-string object key"),
        ({"a": {None: 1}}, "non-string object key"),
        ({("t",): 1}, "non-string object key"),
        ("\ud800", "surrogate"),
        ({"\udfff": 1}, "surrogate"),
        (b"bytes", "not a JSON value"),
        ((1, 2), "not a JSON value"),
        ({1, 2}, "not a JSON value"),
        (datetime.now(tz=UTC), "not a JSON value"),
    ],
)
def test_values_json_cannot_carry_are_refused(value: Any, message: str) -> None:
    with pytest.raises(ValidationError, match=message) as exc:
        codec.encode(value, field="result")
    assert exc.value.field == "result"


def test_the_size_limit_applies_to_the_encoded_bytes() -> None:
    value = "x" * 100
    size = len(msgpack.packb(value))
    assert codec.encode(value, limit=size) == msgpack.packb(value)
    with pytest.raises(PayloadTooLarge) as exc:
        codec.encode(value, limit=size - 1)
    assert exc.value.field == "payload"
    assert isinstance(exc.value, ValidationError)
    assert f"{size} bytes" in exc.value.message


# -- Job from a job hash ------------------------------------------------------------------


def job_hash(**extra: bytes) -> dict[bytes, bytes]:
    """A hash the way the Lua scripts write it (bytes in, bytes out)."""
    raw = {
        "id": b"01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "type": b"echo",
        "queue": b"default",
        "status": b"completed",
        "payload": codec.encode({"a": [1, None]}),
        "result": codec.encode("done"),
        "attempts": b"2",
        "deliveries": b"3",
        "max_attempts": b"5",
        "timeout_ms": b"1500",
        "correlation_id": b"req-7",
        "created_at": b"1700000000000",
        "updated_at": b"1700000000123",
        "started_at": b"1700000000100",
        "finished_at": b"1700000000123",
        "worker": b"w-1",
        "last_error": b"ValueError: x",
        **extra,
    }
    return {k.encode(): v for k, v in raw.items()}


def test_a_full_hash_becomes_a_job() -> None:
    history = [
        {"attempt": 1, "worker": "w-0", "started_at": 1700000000001, "finished_at": 1700000000050,
         "outcome": "failed", "error": "ValueError: x"},
        {"attempt": 2, "worker": "w-1", "started_at": 1700000000100, "finished_at": 1700000000123,
         "outcome": "completed"},
    ]  # fmt: skip
    job = Job.from_hash(job_hash(history=json.dumps(history).encode(), cancel_requested=b"1"))
    assert job == Job(
        id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
        type="echo",
        queue="default",
        status=Status.COMPLETED,
        payload={"a": [1, None]},
        result="done",
        attempts=2,
        max_attempts=5,
        timeout_seconds=1.5,
        last_error="ValueError: x",
        correlation_id="req-7",
        created_at=1700000000000,
        updated_at=1700000000123,
        started_at=1700000000100,
        finished_at=1700000000123,
        worker="w-1",
        cancel_requested=True,
        deliveries=3,
        history=(
            Attempt(1, "w-0", 1700000000001, 1700000000050, Outcome.FAILED, "ValueError: x"),
            Attempt(2, "w-1", 1700000000100, 1700000000123, Outcome.COMPLETED, None),
        ),
    )


def test_a_minimal_hash_leaves_optional_fields_unset() -> None:
    raw = {
        b"id": b"01ARZ3NDEKTSV4RRFFQ69G5FAV",
        b"type": b"echo",
        b"queue": b"q",
        b"status": b"pending",
        b"created_at": b"5",
        b"updated_at": b"5",
    }
    job = Job.from_hash(raw)
    assert job.status is Status.PENDING
    assert (job.payload, job.result, job.attempts, job.deliveries) == (None, None, 0, 0)
    assert (job.max_attempts, job.timeout_seconds, job.correlation_id) == (None, None, None)
    assert (job.run_at, job.next_run_at, job.started_at, job.finished_at) == (None,) * 4
    assert (job.worker, job.cancel_requested, job.history) == (None, False, ())


@pytest.mark.parametrize("raw", [None, b"", b"{}", b"[]", b'{"a": 1}'])
def test_an_empty_history_in_any_spelling_is_no_history(raw: bytes | None) -> None:
    """cjson encodes an empty Lua table as {} (an object), not []."""
    assert parse_history(raw) == ()


def test_history_items_tolerate_missing_and_float_fields() -> None:
    raw = json.dumps([{"attempt": 1, "started_at": 1.7e12, "outcome": "lost and reclaimed"}])
    [item] = parse_history(raw.encode())
    assert item == Attempt(1, None, 1_700_000_000_000, None, Outcome.LOST, None)


def test_to_json_shows_rfc3339_times() -> None:
    history = json.dumps([{"attempt": 1, "worker": "w", "started_at": 1700000000100,
                           "finished_at": 1700000000123, "outcome": "completed"}])  # fmt: skip
    job = Job.from_hash(job_hash(history=history.encode(), run_at=b"1699999999999"))
    out = job.to_json()
    assert out["created_at"] == "2023-11-14T22:13:20.000Z"
    assert out["updated_at"] == "2023-11-14T22:13:20.123Z"
    assert out["run_at"] == "2023-11-14T22:13:19.999Z"
    assert out["next_run_at"] is None
    assert out["history"] == [
        {
            "attempt": 1,
            "worker": "w",
            "started_at": "2023-11-14T22:13:20.100Z",
            "finished_at": "2023-11-14T22:13:20.123Z",
            "outcome": "completed",
            "error": None,
        }
    ]
    assert out["status"] == "completed"
    assert out["payload"] == {"a": [1, None]}
    assert out["timeout_seconds"] == 1.5
    assert "deliveries" not in out
    assert json.loads(json.dumps(out)) == out
    for key in ("created_at", "updated_at", "started_at", "finished_at", "run_at"):
        parsed = datetime.fromisoformat(out[key].replace("Z", "+00:00"))
        assert parsed.tzinfo is not None
        assert int(parsed.timestamp() * 1000) == getattr(job, key)


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "1970-01-01T00:00:00.000Z"),
        (1, "1970-01-01T00:00:00.001Z"),
        (999, "1970-01-01T00:00:00.999Z"),
        (1_700_000_000_000, "2023-11-14T22:13:20.000Z"),
        (None, None),
    ],
)
def test_rfc3339_formatting(ms: int | None, text: str | None) -> None:
    assert ms_to_rfc3339(ms) == text


@given(st.integers(min_value=-62_135_596_800_000, max_value=253_402_300_799_999))
def test_rfc3339_matches_the_datetime_formatting(ms: int) -> None:
    """The fast path (cached seconds) agrees with datetime over every year 1..9999."""
    expected = ms_to_datetime(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"
    assert ms_to_rfc3339(ms) == expected
