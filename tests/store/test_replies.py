"""The scripts' reply words, mapped to outcomes and errors (pure: no Redis)."""

from __future__ import annotations

import pytest

from conveyor.errors import DuplicateJob, IdempotencyConflict, InvalidTransition, JobNotFound
from conveyor.store import replies
from conveyor.values import CancelOutcome, NewJob


def _job(job_id: str, key: str | None = None) -> NewJob:
    return NewJob(id=job_id, type="t", queue="q", payload=b"\xc0", idempotency_key=key)


def test_cancel_words() -> None:
    assert replies.cancel_outcome([b"canceled"], "j1") is CancelOutcome.CANCELED
    assert replies.cancel_outcome([b"requested"], "j1") is CancelOutcome.REQUESTED
    with pytest.raises(JobNotFound):
        replies.cancel_outcome([b"missing"], "j1")
    with pytest.raises(InvalidTransition) as ended:
        replies.cancel_outcome([b"terminal", b"completed"], "j1")
    assert "completed" in str(ended.value)


def test_replay_words() -> None:
    replies.replayed([b"pending", b"1-0"], "j1")  # no error: replayed
    with pytest.raises(JobNotFound):
        replies.replayed([b"missing"], "j1")
    with pytest.raises(InvalidTransition) as refused:
        replies.replayed([b"refused", b"running"], "j1")
    assert "running" in str(refused.value)


def test_replayed_count_skips_refused_and_missing_and_raises_errors() -> None:
    answers = [[b"pending", b"1-0"], [b"refused", b"pending"], [b"missing"], [b"pending", b"2-0"]]
    assert replies.replayed_count(answers) == 2
    with pytest.raises(RuntimeError, match="boom"):
        replies.replayed_count([[b"pending", b"1-0"], RuntimeError("boom")])


def test_words_of_finish_and_renew() -> None:
    assert replies.words([b"completed", b"stale", "ok"]) == ["completed", "stale", "ok"]
    with pytest.raises(ConnectionError):
        replies.words(ConnectionError("gone"))


def test_enqueue_rows_and_refusals() -> None:
    jobs = [_job("a"), _job("b", "key-b")]
    rows = [[b"created", b"pending"], [b"repeat", b"z"]]
    assert replies.enqueue_rows([1234, *rows], jobs) == (
        1234,
        [("created", "pending"), ("repeat", "z")],
    )
    with pytest.raises(DuplicateJob) as duplicate:
        replies.enqueue_rows([-1, 2], jobs)
    assert duplicate.value.job_id == "b"
    with pytest.raises(IdempotencyConflict) as conflict:
        replies.enqueue_rows([-2, 2, b"other"], jobs)
    assert (conflict.value.key, conflict.value.job_id) == ("key-b", "other")
    assert replies.enqueue_rows([-3, 1], jobs) is None  # read the keys again


def test_finish_words_are_statuses_or_stale() -> None:
    assert replies.finished([b"completed", b"stale", b"pending"]) == [
        "completed",
        "stale",
        "pending",
    ]
    assert replies.finished([b"retrying"]) == [replies.Finished.RETRYING]
    with pytest.raises(ValueError, match="'done'"):
        replies.finished([b"done"])
