"""`conveyor pause QUEUE` and `conveyor resume QUEUE`, and `enqueue --expire-after`, against
Redis directly and over HTTP."""

from __future__ import annotations

from tests.cli.test_commands import Conveyor, assert_clean_failure
from tests.cli.test_commands import conveyor as conveyor  # the fixture, in both modes


def test_pause_and_resume_a_queue(conveyor: Conveyor, queue: str) -> None:
    conveyor.ok("enqueue", "echo", "--queue", queue)
    paused = conveyor.json("pause", queue)
    assert (paused["name"], paused["paused"], paused["waiting"]) == (queue, True, 1)
    [mine] = [q for q in conveyor.json("queues")["items"] if q["name"] == queue]
    assert mine["paused"] is True
    table = conveyor.ok("resume", queue).stdout
    header, row = table.splitlines()
    paused_column = header.split().index("PAUSED")
    assert row.split()[paused_column] == "False"
    [mine] = [q for q in conveyor.json("queues")["items"] if q["name"] == queue]
    assert mine["paused"] is False


def test_pausing_an_unknown_queue_fails_cleanly(conveyor: Conveyor, queue: str) -> None:
    assert_clean_failure(conveyor("pause", queue), 1, f"no queue is named {queue}")
    assert_clean_failure(conveyor("resume", "bad name"), 2)


def test_enqueue_with_an_expiry(conveyor: Conveyor, queue: str) -> None:
    job = conveyor.json("enqueue", "echo", "--queue", queue, "--expire-after", "60")
    assert job["expires_at"] is not None
    plain = conveyor.json("enqueue", "echo", "--queue", queue)
    assert plain["expires_at"] is None
    assert_clean_failure(conveyor("enqueue", "echo", "--expire-after", "0"), 2)
