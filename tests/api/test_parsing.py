"""The request parsers on their own: no HTTP, no Redis."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from starlette.datastructures import QueryParams

from conveyor import codec
from conveyor.api.body import count_values, holds_at_most, is_json_media_type, parse_json
from conveyor.api.dto import correlation_id, parse_list_query, parse_new_job, parse_rfc3339
from conveyor.api.problems import InvalidFields, Problem
from conveyor.errors import PayloadTooLarge, ValidationError
from conveyor.states import Status

NOW = 1_700_000_000_000


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("2023-11-14T22:13:20Z", NOW),
        ("2023-11-14t22:13:20z", NOW),
        ("2023-11-14 22:13:20Z", NOW),
        ("2023-11-14T22:13:20.5Z", NOW + 500),
        ("2023-11-14T22:13:20.123456789Z", NOW + 123),
        ("2023-11-15T00:13:20+02:00", NOW),
        ("2023-11-14T20:43:20-01:30", NOW),
        ("2023-11-14T22:13:20+00:00", NOW),
    ],
)
def test_rfc3339_accepted(text: str, ms: int) -> None:
    assert parse_rfc3339(text, "run_at") == ms


@pytest.mark.parametrize(
    "text",
    [
        "2023-11-14T22:13:20",
        "2023-11-14",
        "2023-11-14T22:13Z",
        "2023-11-14T22:13:20+0200",
        "2023-11-14T22:13:20+02:60",
        "2023-11-14T24:00:00Z",
        "2023-11-14T23:59:60Z",
        "2023-02-29T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "+2023-11-14T22:13:20Z",
        "2023-W46-2T22:13:20Z",
        "2023-11-14T22:13:20.Z",
        "\uff12\uff10\uff12\uff13-11-14T22:13:20Z"  # full-width digits,
        "",
    ],
)
def test_rfc3339_refused(text: str) -> None:
    with pytest.raises(ValidationError) as info:
        parse_rfc3339(text, "run_at")
    assert info.value.field == "run_at"


def test_a_delay_stays_relative_for_redis_to_count_from_its_own_clock() -> None:
    job = parse_new_job({"type": "t", "delay_seconds": 1.5}, max_payload_bytes=1024)
    assert (job.due_ms, job.delay_ms) == (None, 1500)


def test_new_job_fields() -> None:
    job = parse_new_job(
        {"type": "t", "payload": {"a": [1]}, "queue": "q", "max_attempts": 7,
         "timeout_seconds": 0.25, "run_at": "2023-11-14T22:13:20Z"},
        max_payload_bytes=1024,
        correlation_id="c-1",
    )  # fmt: skip
    assert (job.type, job.queue, job.max_attempts, job.timeout_ms) == ("t", "q", 7, 250)
    assert job.due_ms == NOW
    assert job.correlation_id == "c-1"
    assert codec.decode(job.payload) == {"a": [1]}
    assert len(job.id) == 26


def test_too_large_payload_is_reported_after_field_errors() -> None:
    body = {"type": "t", "payload": "x" * 2000}
    with pytest.raises(PayloadTooLarge):
        parse_new_job(body, max_payload_bytes=1024)
    with pytest.raises(InvalidFields) as info:
        parse_new_job({**body, "queue": "a:b"}, max_payload_bytes=1024)
    assert [e.field for e in info.value.errors] == ["queue"]


def test_list_query_defaults_and_statuses() -> None:
    query = parse_list_query(QueryParams("status=pending,running&status=pending&status=failed"))
    assert query.statuses == (Status.PENDING, Status.RUNNING, Status.FAILED)
    assert query.limit == 50
    assert query.cursor is None
    assert parse_list_query(QueryParams("limit=500")).limit == 500


@pytest.mark.parametrize(
    ("value", "ok"),
    [
        ("application/json", True),
        ("application/json; charset=utf-8", True),
        ('application/json;charset="UTF-8"', True),
        ("APPLICATION/JSON", True),
        ("application/json; charset=utf-16", False),
        ("application/problem+json", False),
        ("", False),
        (None, False),
    ],
)
def test_media_type(value: str | None, ok: bool) -> None:
    assert is_json_media_type(value) is ok


def test_parse_json_refusals_are_400() -> None:
    for data in [b"", b"{", b'{"a":1,"a":2}', b"[NaN]", b"1e400", b"[" * 3000 + b"]" * 3000]:
        with pytest.raises(Problem) as info:
            parse_json(data)
        assert info.value.status == 400


def test_parse_json_keeps_values() -> None:
    assert parse_json(b'{"a": [1, -2.5, "\\u00e9", null, true]}') == {
        "a": [1, -2.5, "\u00e9", None, True]
    }


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"x-correlation-id": "abc"}, "abc"),
        ({"x-request-id": "r-1"}, "r-1"),
        ({"x-correlation-id": "bad value", "x-request-id": "good"}, "good"),
    ],
)
def test_correlation_id_choice(headers: dict[str, str], expected: str) -> None:
    assert correlation_id(headers) == expected


def test_correlation_id_rejects_trailing_newline() -> None:
    assert correlation_id({"x-correlation-id": "abc\n"}) != "abc\n"


@pytest.mark.parametrize(
    ("text", "count"),
    [
        (b"{}", 1),
        (b"[]", 1),
        (b"0", 0),
        (b'""', 0),
        (b"[1, 2, 3]", 3),
        (b'{"a": [1, [2, [3, {}]]], "b": 2}', 9),
        (b'["{,[", ",", "]}"]', 3),
        (b'["a \\" , [ {", 1]', 2),  # an escaped quote does not end the string
        (b'["a \\\\", ",", 1]', 3),  # an escaped backslash does not escape the quote
        (b'["\\\\\\" , "]', 1),  # \\ then \": the string goes on past the comma
        (b'["\\u0022,", "\\n,\\t"]', 2),
        (b'{"k,{": "v,[", "x": [",", ","]}', 4),
    ],
)
def test_count_values_counts_only_outside_strings(text: bytes, count: int) -> None:
    assert count_values(text) == count
    assert holds_at_most(text, count)
    if count:
        assert not holds_at_most(text, count - 1)


def test_count_values_across_scan_windows() -> None:
    """Strings longer than a scan window, full of commas, brackets and escapes."""
    inside = 'a,[{\\"' * 200_000  # 1.2 MB of `a,[{\"` inside one string
    text = ('{"jobs": ["' + inside + '", [1, 2], "' + inside + '"]}').encode()
    assert count_values(text) == 6  # {, the two [ and the three commas between values
    assert holds_at_most(text, 6)
    assert not holds_at_most(text, 5)
    many = b"[" + b",".join([b'"x,x"'] * 300_000) + b"]"
    assert count_values(many) == 300_000
    assert count_values(many, stop_above=1_000) <= 300_000


def test_count_values_stops_early() -> None:
    text = b"[" + b"{}," * 5_000_000 + b"{}]"
    assert 1_000 < count_values(text, stop_above=1_000) < 5_000_000


def _expected_count(value: object) -> int:
    """Each container counts once, and each comma between its items or members."""
    if isinstance(value, dict | list):
        items = list(value.values()) if isinstance(value, dict) else value
        return 1 + max(len(items) - 1, 0) + sum(_expected_count(item) for item in items)
    return 0


_TRICKY = st.text(alphabet='{}[],:"\\ax\n\u00e9', max_size=8)
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | _TRICKY,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_TRICKY, inner, max_size=4),
    max_leaves=20,
)


@given(_JSON, st.booleans())
def test_count_values_matches_the_parsed_document(value: object, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert count_values(text) == _expected_count(value)
