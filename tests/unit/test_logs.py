"""Log lines: JSON shape, timestamps, the log context across tasks and threads, console text."""

from __future__ import annotations

import asyncio
import contextvars
import io
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from conveyor.logs import (
    bind,
    current_context,
    log_context,
    setup_logging,
    unbind,
    uvicorn_log_config,
)

TS = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z")
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """setup_logging changes process-wide state; put it back for the next test."""
    root = logging.getLogger()
    saved = (list(root.handlers), root.level)
    saved_uvicorn = {
        name: (list(lg.handlers), lg.level, lg.propagate, lg.disabled)
        for name in UVICORN_LOGGERS
        for lg in [logging.getLogger(name)]
    }
    yield
    for handler in list(root.handlers):
        root.removeHandler(handler)
    for handler in saved[0]:
        root.addHandler(handler)
    root.setLevel(saved[1])
    for name, (handlers, level, propagate, disabled) in saved_uvicorn.items():
        lg = logging.getLogger(name)
        lg.handlers[:] = handlers
        lg.setLevel(level)
        lg.propagate = propagate
        lg.disabled = disabled


@pytest.fixture
def stream() -> io.StringIO:
    return io.StringIO()


def json_lines(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


log = logging.getLogger("conveyor.test")


# --- JSON ----------------------------------------------------------------------------------


def test_json_line_shape(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    log.info("job %s done", "A", extra={"status": "completed", "duration_ms": 12.5})
    [line] = stream.getvalue().splitlines()
    record = json.loads(line)
    assert list(record)[:4] == ["ts", "level", "logger", "msg"]
    assert record == {
        "ts": record["ts"],
        "level": "INFO",
        "logger": "conveyor.test",
        "msg": "job A done",
        "status": "completed",
        "duration_ms": 12.5,
    }


def test_ts_is_rfc3339_utc_with_milliseconds(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    before = time.time()
    log.info("now")
    after = time.time()
    [record] = json_lines(stream)
    assert TS.fullmatch(record["ts"]), record["ts"]
    logged = datetime.fromisoformat(record["ts"].replace("Z", "+00:00"))
    assert logged.tzinfo == UTC
    assert int(before * 1000) <= int(logged.timestamp() * 1000) <= int(after * 1000) + 1


def test_level_filters_and_is_case_insensitive(stream: io.StringIO) -> None:
    setup_logging("warning", "json", stream)
    log.info("hidden")
    log.warning("shown")
    assert [r["msg"] for r in json_lines(stream)] == ["shown"]
    assert [r["level"] for r in json_lines(stream)] == ["WARNING"]


def test_setup_is_idempotent_and_replaces_earlier_handlers(stream: io.StringIO) -> None:
    earlier = io.StringIO()
    logging.getLogger().addHandler(logging.StreamHandler(earlier))
    setup_logging("INFO", "console", io.StringIO())
    setup_logging("INFO", "json", stream)
    log.info("once")
    assert len(logging.getLogger().handlers) == 1
    assert len(json_lines(stream)) == 1
    assert earlier.getvalue() == ""


def test_bad_level_or_format_is_refused() -> None:
    with pytest.raises(ValueError, match="log level"):
        setup_logging("LOUD", "json")
    with pytest.raises(ValueError, match="log format"):
        setup_logging("INFO", "xml")


def test_exceptions_carry_error_and_traceback(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    try:
        raise KeyError("missing-thing")
    except KeyError:
        log.exception("handler crashed")
    [record] = json_lines(stream)
    assert record["level"] == "ERROR"
    assert record["msg"] == "handler crashed"
    assert record["error"] == "'missing-thing'"
    assert record["exc_info"].startswith("Traceback (most recent call last):")
    assert "KeyError: 'missing-thing'" in record["exc_info"]


def test_an_explicit_error_field_is_kept(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    try:
        raise ValueError("inner")
    except ValueError:
        log.warning("retrying", exc_info=True, extra={"error": "outer"})
    [record] = json_lines(stream)
    assert record["error"] == "outer"
    assert "ValueError: inner" in record["exc_info"]


def test_unserialisable_extras_do_not_break_the_line(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    log.info("odd", extra={"obj": object(), "items": ("a", "b")})
    [record] = json_lines(stream)
    assert record["obj"].startswith("<object object")
    assert record["items"] == ["a", "b"]


# --- context -------------------------------------------------------------------------------


def test_context_fields_appear_and_are_removed_after_the_block(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    with log_context(job_id="J1", queue="default", type="echo", attempt=2, worker="w1"):
        with log_context(correlation_id="C1", attempt=3):
            log.info("inner")
        log.info("outer")
    log.info("none")
    inner, outer, none = json_lines(stream)
    assert {k: inner[k] for k in ("job_id", "queue", "type", "attempt", "worker")} == {
        "job_id": "J1",
        "queue": "default",
        "type": "echo",
        "attempt": 3,
        "worker": "w1",
    }
    assert inner["correlation_id"] == "C1"
    assert outer["attempt"] == 2
    assert "correlation_id" not in outer
    assert set(none) == {"ts", "level", "logger", "msg"}
    assert current_context() == {}


def test_none_values_are_left_out_and_unset_a_field(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    with log_context(job_id="J1", correlation_id=None), log_context(job_id=None, queue="q"):
        log.info("x")
    [record] = json_lines(stream)
    assert "job_id" not in record
    assert "correlation_id" not in record
    assert record["queue"] == "q"


def test_call_extras_win_over_the_context(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    with log_context(queue="from-context"):
        log.info("x", extra={"queue": "from-call"})
    assert json_lines(stream)[0]["queue"] == "from-call"


def test_bind_and_unbind(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    token = bind(worker="w9")
    try:
        log.info("bound")
    finally:
        unbind(token)
    log.info("unbound")
    bound, unbound = json_lines(stream)
    assert bound["worker"] == "w9"
    assert "worker" not in unbound


def test_the_context_is_immutable() -> None:
    with log_context(job_id="J1") as fields:
        with pytest.raises(TypeError):
            fields["job_id"] = "other"  # type: ignore[index]
        assert current_context()["job_id"] == "J1"


def test_fields_that_clash_with_log_record_attributes_are_refused() -> None:
    with pytest.raises(ValueError, match="msg"), log_context(msg="x"):
        pass
    with pytest.raises(ValueError, match="name"):
        bind(name="x")


def test_context_propagates_into_asyncio_tasks_without_leaking(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)

    async def attempt(job_id: str) -> None:
        with log_context(job_id=job_id):
            await asyncio.sleep(0)
            log.info("running")
            await asyncio.sleep(0)
            log.info("done")

    async def main() -> None:
        with log_context(worker="w1"):
            tasks = [asyncio.create_task(attempt(f"J{i}")) for i in range(3)]
        await asyncio.gather(*tasks)
        log.info("after")

    asyncio.run(main())
    records = json_lines(stream)
    jobs = [r for r in records if r["msg"] in ("running", "done")]
    assert len(jobs) == 6
    assert all(r["worker"] == "w1" for r in jobs)
    assert sorted(r["job_id"] for r in jobs) == ["J0", "J0", "J1", "J1", "J2", "J2"]
    [after] = [r for r in records if r["msg"] == "after"]
    assert "worker" not in after
    assert "job_id" not in after


def test_context_propagates_into_threads_run_in_a_copied_context(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)

    def work(label: str) -> None:
        log.info(label)

    with log_context(job_id="J7", correlation_id="C7"):
        copied = contextvars.copy_context()
        with_context = threading.Thread(target=copied.run, args=(work, "copied"))
        without = threading.Thread(target=work, args=("plain",))
    for thread in (with_context, without):
        thread.start()
        thread.join()
    records = {r["msg"]: r for r in json_lines(stream)}
    assert records["copied"]["job_id"] == "J7"
    assert records["copied"]["correlation_id"] == "C7"
    assert "job_id" not in records["plain"]


def test_context_propagates_through_to_thread(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)

    async def main() -> None:
        with log_context(job_id="J8"):
            await asyncio.to_thread(log.info, "in a thread")

    asyncio.run(main())
    assert json_lines(stream)[0]["job_id"] == "J8"


# --- console -------------------------------------------------------------------------------


def test_console_line(stream: io.StringIO) -> None:
    setup_logging("DEBUG", "console", stream)
    with log_context(job_id="J1", worker="host 1"):
        log.debug("job completed", extra={"duration_ms": 3.5, "tags": ["a", "b"]})
    [line] = stream.getvalue().splitlines()
    ts, rest = line.split(" ", 1)
    assert TS.fullmatch(ts)
    assert rest == (
        'DEBUG   conveyor.test job completed duration_ms=3.5 tags=["a", "b"] '
        'job_id=J1 worker="host 1"'
    )


def test_console_exception_has_error_and_traceback(stream: io.StringIO) -> None:
    setup_logging("INFO", "console", stream)
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        log.exception("crashed")
    first, *rest = stream.getvalue().splitlines()
    assert first.endswith("ERROR   conveyor.test crashed error=boom")
    assert rest[0] == "Traceback (most recent call last):"
    assert rest[-1] == "RuntimeError: boom"


# --- uvicorn -------------------------------------------------------------------------------


def test_uvicorn_loggers_write_through_the_root_handler(stream: io.StringIO) -> None:
    import uvicorn

    async def app(scope: Any, receive: Any, send: Any) -> None:  # pragma: no cover
        pass

    setup_logging("INFO", "json", stream)
    uvicorn.Config(app, log_config=uvicorn_log_config())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        assert logging.getLogger(name).handlers == []
        assert logging.getLogger(name).propagate
    log.info("app logger still enabled")
    with log_context(correlation_id="C1"):
        logging.getLogger("uvicorn.error").info(
            "Started server process [%d]", 42, extra={"color_message": "\x1b[1mcolour\x1b[0m"}
        )
        logging.getLogger("uvicorn.access").info(
            '%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/healthz", "1.1", 200
        )
    mine, error, access = json_lines(stream)
    assert mine["msg"] == "app logger still enabled"
    assert error["logger"] == "uvicorn.error"
    assert error["msg"] == "Started server process [42]"
    assert "color_message" not in error
    assert access["logger"] == "uvicorn.access"
    assert access["msg"] == '127.0.0.1:5000 - "GET /healthz HTTP/1.1" 200'
    assert access["correlation_id"] == "C1"


def test_uvicorn_log_config_level() -> None:
    config = uvicorn_log_config("debug")
    assert config["disable_existing_loggers"] is False
    assert {c["level"] for c in config["loggers"].values()} == {"DEBUG"}
    assert "level" not in uvicorn_log_config()["loggers"]["uvicorn"]
