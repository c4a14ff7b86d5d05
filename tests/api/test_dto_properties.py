"""Properties of the request parsers of api/dto.py, over generated input."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from conveyor import codec, jobspec
from conveyor.api.dto import (
    DEFAULT_LIMIT,
    DEFAULT_QUEUE,
    JOB_FIELDS,
    QUERY_FIELDS,
    parse_batch,
    parse_list_query,
    parse_new_job,
    parse_rfc3339,
)
from conveyor.api.problems import InvalidFields
from conveyor.errors import PayloadTooLarge, ValidationError
from conveyor.ids import JOB_ID_PATTERN, NAME_PATTERN, validate_job_id
from conveyor.states import Status

MAX_PAYLOAD = 4096
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

quick = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# -- strategies -----------------------------------------------------------------------------

# What json.loads can give: unbounded integers and finite floats included.
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
field_names = st.sampled_from(sorted(JOB_FIELDS)) | st.text(max_size=12)
json_objects = st.dictionaries(field_names, json_values, max_size=9)

# Payloads the store can carry: 64-bit integers, nothing nested absurdly deep.
payloads = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
names = st.from_regex(NAME_PATTERN, fullmatch=True)
offsets = st.integers(min_value=-(23 * 60 + 59), max_value=23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)
aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30), timezones=offsets
)
numbers = st.integers(min_value=0, max_value=jobspec.MAX_DELAY_SECONDS) | st.floats(
    min_value=0, max_value=jobspec.MAX_DELAY_SECONDS
)
timeouts = st.integers(min_value=1, max_value=jobspec.MAX_TIMEOUT_SECONDS) | st.floats(
    min_value=0, max_value=jobspec.MAX_TIMEOUT_SECONDS, exclude_min=True
)


def epoch_ms(moment: datetime) -> int:
    return (moment - EPOCH) // timedelta(milliseconds=1)


def rfc3339(moment: datetime, timespec: str, zulu: bool) -> str:
    text = moment.isoformat(timespec=timespec)
    if zulu and moment.utcoffset() == timedelta(0):
        text = text.removesuffix("+00:00") + "Z"
    return text


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Any]:
    body: dict[str, Any] = {"type": draw(names)}
    if draw(st.booleans()):
        body["queue"] = draw(names)
    if draw(st.booleans()):
        body["payload"] = draw(payloads)
    if draw(st.booleans()):
        body["max_attempts"] = draw(st.integers(min_value=1, max_value=jobspec.MAX_ATTEMPTS))
    if draw(st.booleans()):
        body["timeout_seconds"] = draw(timeouts)
    when = draw(st.sampled_from(["now", "delay", "run_at"]))
    if when == "delay":
        body["delay_seconds"] = draw(numbers)
    elif when == "run_at":
        moment = draw(aware_datetimes.filter(lambda m: m.year >= 1971))
        body["run_at"] = rfc3339(moment, draw(st.sampled_from(["seconds", "milliseconds"])), True)
    return body


# -- parse_new_job --------------------------------------------------------------------------


@quick
@given(json_objects)
def test_parse_new_job_refuses_only_with_validation_errors(body: dict[str, Any]) -> None:
    try:
        job = parse_new_job(body, max_payload_bytes=MAX_PAYLOAD)
    except (InvalidFields, PayloadTooLarge) as exc:
        refused: ValidationError = exc
    else:
        assert set(body) <= JOB_FIELDS
        validate_job_id(job.id)
        return
    errors = refused.errors if isinstance(refused, InvalidFields) else [refused]
    assert errors
    assert all(isinstance(e.field, str) and e.message for e in errors)


@quick
@given(valid_bodies(), st.none() | st.from_regex(r"[A-Za-z0-9._:-]{1,128}", fullmatch=True))
def test_valid_bodies_round_trip_into_new_jobs(body: dict[str, Any], cid: str | None) -> None:
    job = parse_new_job(body, max_payload_bytes=1 << 20, correlation_id=cid)
    assert job.type == body["type"]
    assert job.queue == body.get("queue", DEFAULT_QUEUE)
    assert codec.decode(job.payload) == body.get("payload")
    assert job.max_attempts == body.get("max_attempts")
    timeout = body.get("timeout_seconds")
    assert job.timeout_ms == (None if timeout is None else max(1, round(timeout * 1000)))
    assert job.correlation_id == cid
    if "delay_seconds" in body:
        delay_ms = round(body["delay_seconds"] * 1000)
        # Relative: the enqueue script adds it to Redis's clock, not the API's.
        assert (job.due_ms, job.delay_ms) == (None, delay_ms if delay_ms > 0 else None)
    elif "run_at" in body:
        assert job.due_ms == epoch_ms(datetime.fromisoformat(body["run_at"]))
        assert job.delay_ms is None
    else:
        assert (job.due_ms, job.delay_ms) == (None, None)
    validate_job_id(job.id)


@quick
@given(valid_bodies())
def test_delay_and_run_at_together_are_refused(body: dict[str, Any]) -> None:
    body = {**body, "delay_seconds": 1, "run_at": "2030-01-01T00:00:00Z"}
    with pytest.raises(InvalidFields) as caught:
        parse_new_job(body, max_payload_bytes=1 << 20)
    assert "run_at" in {e.field for e in caught.value.errors}


@quick
@given(st.dictionaries(st.sampled_from(["jobs", "other"]), json_values | st.lists(json_objects)))
def test_parse_batch_refuses_only_with_validation_errors(body: dict[str, Any]) -> None:
    try:
        jobs = parse_batch(body, max_jobs=5, max_payload_bytes=MAX_PAYLOAD)
    except ValidationError as exc:
        errors = getattr(exc, "errors", [exc])
        assert all(e.field.startswith("jobs") or e.field == "other" for e in errors)
    else:
        assert 1 <= len(jobs) <= 5


# -- parse_rfc3339 --------------------------------------------------------------------------


@quick
@given(
    aware_datetimes,
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
    st.booleans(),
    st.sampled_from(["T", "t", " "]),
)
def test_rfc3339_accepts_aware_date_times(
    moment: datetime, timespec: str, zulu: bool, separator: str
) -> None:
    text = rfc3339(moment, timespec, zulu).replace("T", separator, 1)
    truncated = datetime.fromisoformat(rfc3339(moment, timespec, False))
    assert parse_rfc3339(text, "at") == epoch_ms(truncated)


@quick
@given(aware_datetimes, st.text(alphabet="0123456789", min_size=1, max_size=3))
def test_rfc3339_accepts_up_to_nine_fraction_digits(moment: datetime, extra: str) -> None:
    text = moment.replace(tzinfo=None).isoformat(timespec="microseconds") + extra + "Z"
    expected = epoch_ms(moment.replace(tzinfo=UTC))
    assert parse_rfc3339(text, "at") == expected


@quick
@given(
    st.datetimes(min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30)),
    st.sampled_from(["seconds", "milliseconds", "microseconds"]),
)
def test_rfc3339_refuses_naive_date_times(moment: datetime, timespec: str) -> None:
    with pytest.raises(ValidationError) as caught:
        parse_rfc3339(moment.isoformat(timespec=timespec), "run_at")
    assert caught.value.field == "run_at"


@quick
@given(st.text(max_size=40) | json_values)
def test_rfc3339_refuses_with_validation_errors_only(value: object) -> None:
    fields = []
    try:
        parse_rfc3339(value, "at")
    except ValidationError as exc:
        fields.append(exc.field)
    assert fields in ([], ["at"])


# -- parse_list_query -----------------------------------------------------------------------

query_names = st.sampled_from(sorted(QUERY_FIELDS)) | st.text(max_size=10)
query_values = (
    st.text(max_size=30)
    | st.sampled_from([s.value for s in Status])
    | st.from_regex(JOB_ID_PATTERN, fullmatch=True)
    | st.integers(min_value=-5, max_value=600).map(str)
)


@quick
@given(st.lists(st.tuples(query_names, query_values), max_size=8))
def test_parse_list_query_refuses_only_with_invalid_fields(
    pairs: list[tuple[str, str]],
) -> None:
    try:
        query = parse_list_query(QueryParams(pairs))
    except InvalidFields as exc:
        errors = exc.errors
    else:
        assert {name for name, _ in pairs} <= QUERY_FIELDS
        assert 1 <= query.limit <= 500
        return
    assert errors


@quick
@given(
    st.lists(st.sampled_from(list(Status)), max_size=4),
    st.none() | names,
    st.none() | st.integers(min_value=1, max_value=500),
    st.none() | aware_datetimes,
)
def test_valid_list_queries_round_trip(
    statuses: list[Status], queue: str | None, limit: int | None, after: datetime | None
) -> None:
    pairs = [("status", s.value) for s in statuses]
    if queue is not None:
        pairs.append(("queue", queue))
    if limit is not None:
        pairs.append(("limit", str(limit)))
    if after is not None:
        pairs.append(("created_after", after.isoformat()))
    query = parse_list_query(QueryParams(pairs))
    assert query.statuses == tuple(dict.fromkeys(statuses))
    assert query.queue == queue
    assert query.limit == (DEFAULT_LIMIT if limit is None else limit)
    if after is not None:
        assert query.created_after_ms == min(max(epoch_ms(after), 0), 2**48 - 1)
