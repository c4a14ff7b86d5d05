"""The state machine table, and the Lua scripts' transition headers checked against it."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from conveyor.errors import InvalidTransition
from conveyor.states import (
    DELAYED,
    TERMINAL,
    TRANSITIONS,
    Event,
    Status,
    accepting,
    initial_status,
    next_status,
)

LUA_DIR = Path(__file__).resolve().parents[2] / "shared" / "store" / "lua"
TRANSITION_LINE = re.compile(r"^--\s*transition:\s*(\w+):\s*([\w ]+?)\s*->\s*([\w ]+?)\s*$")
CREATE = "create"  # enqueue.lua's pseudo-event: a new job has no status to leave


@pytest.mark.parametrize(
    ("status", "event"),
    list(itertools.product(Status, Event)),
    ids=[f"{s.value}-{e.value}" for s, e in itertools.product(Status, Event)],
)
def test_every_pair_either_moves_per_the_table_or_is_refused(status: Status, event: Event) -> None:
    if (status, event) in TRANSITIONS:
        assert next_status(status, event) is TRANSITIONS[(status, event)]
    else:
        with pytest.raises(InvalidTransition) as exc:
            next_status(status, event)
        assert (exc.value.current, exc.value.event) == (status.value, event.value)
        assert str(exc.value) == f"cannot {event.value} a job that is {status.value}"


@pytest.mark.parametrize("status", sorted(TERMINAL))
def test_a_terminal_status_is_left_only_by_replay(status: Status) -> None:
    assert status.terminal
    outgoing = {e for (s, e) in TRANSITIONS if s is status}
    assert outgoing <= {Event.REPLAY}
    for event in set(Event) - {Event.REPLAY}:
        with pytest.raises(InvalidTransition):
            next_status(status, event)


def test_terminal_and_delayed_statuses() -> None:
    assert {s for s in Status if s.terminal} == {
        Status.COMPLETED,
        Status.FAILED,
        Status.CANCELED,
        Status.EXPIRED,
    }
    assert {s for s in Status if s in DELAYED} == {Status.SCHEDULED, Status.RETRYING}
    assert not DELAYED & TERMINAL


def test_replay_restarts_failed_and_canceled_jobs_only() -> None:
    assert accepting(Event.REPLAY) == {Status.FAILED, Status.CANCELED}
    assert {TRANSITIONS[(s, Event.REPLAY)] for s in accepting(Event.REPLAY)} == {Status.PENDING}
    with pytest.raises(InvalidTransition):
        next_status(Status.COMPLETED, Event.REPLAY)


@pytest.mark.parametrize(
    ("event", "statuses"),
    [
        (Event.PROMOTE, {Status.SCHEDULED, Status.RETRYING}),
        (Event.CLAIM, {Status.PENDING}),
        (Event.RECLAIM, {Status.RUNNING}),
        (Event.POISON, {Status.RUNNING}),
        (Event.COMPLETE, {Status.RUNNING}),
        (Event.RETRY, {Status.RUNNING}),
        (Event.FAIL, {Status.RUNNING}),
        (Event.CANCEL, {Status.SCHEDULED, Status.PENDING, Status.RETRYING}),
        (Event.REQUEST_CANCEL, {Status.RUNNING}),
        (Event.STOP_CANCELED, {Status.RUNNING}),
        (Event.REQUEUE, {Status.RUNNING}),
        (Event.REPLAY, {Status.FAILED, Status.CANCELED}),
        (Event.EXPIRE, {Status.SCHEDULED, Status.PENDING, Status.RUNNING, Status.RETRYING}),
        (Event.HAND_BACK, {Status.PENDING, Status.RUNNING}),
    ],
)
def test_accepting_lists_the_statuses_an_event_leaves(event: Event, statuses: set[Status]) -> None:
    assert accepting(event) == statuses
    assert isinstance(accepting(event), frozenset)


def test_every_event_is_accepted_somewhere_and_every_status_is_reachable() -> None:
    assert all(accepting(e) for e in Event)
    reachable = {initial_status(delayed=True), initial_status(delayed=False)}
    reachable |= set(TRANSITIONS.values())
    assert reachable == set(Status)


def test_a_new_job_is_scheduled_only_when_due_later() -> None:
    assert initial_status(delayed=True) is Status.SCHEDULED
    assert initial_status(delayed=False) is Status.PENDING


# -- the Lua headers against the table -----------------------------------------------------


def transition_lines() -> list[tuple[str, str, list[str], list[str]]]:
    """(script, event, from statuses, to statuses) for every transition header line."""
    out = []
    for path in sorted(LUA_DIR.glob("*.lua")):
        for line in path.read_text().splitlines():
            if not re.match(r"^--\s*transition:", line):
                continue
            m = TRANSITION_LINE.match(line)
            assert m, f"{path.name}: malformed transition line {line!r}"
            event, froms, tos = m.groups()
            out.append((path.name, event, froms.split(), tos.split()))
    return out


LINES = transition_lines()


def test_the_headers_are_found() -> None:
    scripts = {script for script, *_ in LINES}
    assert {
        "enqueue.lua",
        "claim.lua",
        "complete.lua",
        "fail.lua",
        "requeue.lua",
        "cancel.lua",
        "promote.lua",
        "replay.lua",
    } <= scripts


@pytest.mark.parametrize(
    ("script", "event", "froms", "tos"), LINES, ids=[f"{s}:{e}" for s, e, _, _ in LINES]
)
def test_each_header_line_is_a_row_of_the_table(
    script: str, event: str, froms: list[str], tos: list[str]
) -> None:
    if event == CREATE:
        assert script == "enqueue.lua"
        assert froms == ["new"]
        assert {Status(t) for t in tos} == {
            initial_status(delayed=True),
            initial_status(delayed=False),
        }
        return
    ev = Event(event)
    assert len(tos) == 1, f"{script}: {event} has more than one target"
    for status in froms:
        assert next_status(Status(status), ev) is Status(tos[0]), f"{script}: {status} --{event}"


def test_the_headers_together_implement_every_row() -> None:
    declared: dict[Event, set[Status]] = {}
    for _, event, froms, _ in LINES:
        if event != CREATE:
            declared.setdefault(Event(event), set()).update(Status(s) for s in froms)
    assert set(declared) == set(Event)
    for event, statuses in declared.items():
        assert statuses == accepting(event), f"{event}: headers {statuses}"
