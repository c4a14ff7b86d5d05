"""Retry decisions and the handler registry: pure, no Redis."""

from __future__ import annotations

import asyncio
import functools
import inspect
import random
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from conveyor.backoff import Jitter, RetryPolicy, bounds_seconds, delay_seconds
from conveyor.errors import ConfigError, ValidationError
from conveyor.worker.context import JobContext
from conveyor.worker.errors import PermanentError
from conveyor.worker.registry import HandlerSpec, Registry, import_handler_modules
from conveyor.worker.retry import RetryDecision, decide, effective_max_attempts
from conveyor.worker.task import Task

CTX = JobContext("job-1", "mail.send", "default", 1, 3, None, "worker-1")

POLICIES = [
    RetryPolicy(base_seconds=0.5, factor=2.0, max_seconds=10.0, jitter=jitter) for jitter in Jitter
]


# --- retry.decide ------------------------------------------------------------------------------


class Unrecoverable(PermanentError):
    pass


@pytest.mark.parametrize("error", [PermanentError("bad input"), Unrecoverable("subclass")])
def test_permanent_error_is_never_retried(error: BaseException) -> None:
    decision = decide(error, attempt=1, max_attempts=10, policy=RetryPolicy())
    assert decision == RetryDecision(retryable=False, delay_ms=0, max_attempts=10)


@pytest.mark.parametrize(("attempt", "max_attempts"), [(1, 1), (3, 3), (4, 3), (50, 2)])
def test_no_retry_once_attempts_are_used_up(attempt: int, max_attempts: int) -> None:
    decision = decide(RuntimeError("boom"), attempt, max_attempts, RetryPolicy())
    assert decision == RetryDecision(retryable=False, delay_ms=0, max_attempts=max_attempts)


@pytest.mark.parametrize("policy", POLICIES, ids=[p.jitter.value for p in POLICIES])
@pytest.mark.parametrize("seed", [0, 1, 42, 2024])
def test_retry_delay_stays_within_the_backoff_bounds(policy: RetryPolicy, seed: int) -> None:
    rng = random.Random(seed)
    for attempt in range(1, 12):
        decision = decide(RuntimeError("boom"), attempt, 100, policy, rng)
        low, high = bounds_seconds(attempt, policy)
        assert decision.retryable
        assert decision.max_attempts == 100
        # delay_ms is the delay truncated to whole milliseconds.
        assert int(low * 1000) <= decision.delay_ms <= high * 1000


@pytest.mark.parametrize("policy", POLICIES, ids=[p.jitter.value for p in POLICIES])
def test_retry_delay_is_the_seeded_backoff(policy: RetryPolicy) -> None:
    for attempt in (1, 2, 5):
        expected = int(delay_seconds(attempt, policy, random.Random(7)) * 1000)
        decision = decide(ValueError("x"), attempt, 10, policy, random.Random(7))
        assert decision.delay_ms == expected


def test_exact_delays_without_jitter() -> None:
    policy = RetryPolicy(base_seconds=0.5, factor=2.0, max_seconds=3.0, jitter=Jitter.NONE)
    delays = [decide(RuntimeError(), a, 10, policy).delay_ms for a in range(1, 6)]
    assert delays == [500, 1000, 2000, 3000, 3000]


def test_a_timeout_is_retryable_like_any_failure() -> None:
    policy = RetryPolicy(jitter=Jitter.NONE)
    assert decide(None, 1, 3, policy) == RetryDecision(True, 1000, 3)
    assert decide(TimeoutError(), 1, 3, policy) == RetryDecision(True, 1000, 3)
    assert decide(None, 3, 3, policy).retryable is False


@pytest.mark.parametrize(
    ("job", "handler", "default", "expected"),
    [
        (5, 3, 2, 5),  # the job's own value wins
        (1, 3, 2, 1),
        (None, 3, 2, 3),  # then the handler's
        (None, None, 2, 2),  # then the worker's default
        (7, None, 2, 7),
    ],
)
def test_effective_max_attempts_precedence(
    job: int | None, handler: int | None, default: int, expected: int
) -> None:
    assert effective_max_attempts(job, handler, default) == expected


# --- Registry ----------------------------------------------------------------------------------


async def async_handler(ctx: Any, payload: Any) -> Any:
    return payload


def sync_handler(ctx: Any, payload: Any) -> Any:
    return payload


def test_register_and_get() -> None:
    registry = Registry()
    policy = RetryPolicy(base_seconds=2.0)
    spec = registry.register(
        "reports.build", async_handler, max_attempts=5, timeout=60, backoff=policy
    )
    assert spec == HandlerSpec("reports.build", async_handler, True, 5, 60, policy)
    assert registry.get("reports.build") is spec
    assert registry.get("missing") is None
    plain = registry.register("images.resize", sync_handler)
    assert plain.is_async is False
    assert (plain.max_attempts, plain.timeout_seconds, plain.backoff) == (None, None, None)
    assert registry.names() == ["images.resize", "reports.build"]


def test_handler_decorator_registers_and_returns_a_task_of_the_function() -> None:
    registry = Registry()

    @registry.handler("mail.send", max_attempts=2, timeout=1.5)
    async def send(ctx: Any, payload: Any) -> str:
        """Sends the mail."""
        return "sent"

    @registry.handler("mail.render")
    def render(ctx: Any, payload: Any) -> str:
        return "html"

    assert isinstance(send, Task)
    assert (send.name, render.name) == ("mail.send", "mail.render")
    assert send.__doc__ == "Sends the mail."
    assert inspect.signature(send) == inspect.signature(send.fn)
    assert render(CTX, None) == "html"  # still callable like the function
    assert asyncio.run(send(CTX, None)) == "sent"
    send_spec, render_spec = registry.get("mail.send"), registry.get("mail.render")
    assert send_spec is not None
    assert render_spec is not None
    assert send_spec.fn is send.fn
    assert send_spec.is_async
    assert (send_spec.max_attempts, send_spec.timeout_seconds) == (2, 1.5)
    assert render_spec.fn is render.fn
    assert not render_spec.is_async
    assert (send_spec.payload_type, render_spec.payload_type) == (None, None)


def test_registering_a_task_registers_its_function() -> None:
    first, second = Registry(), Registry()
    task = first.handler("mail.send")(async_handler)
    spec = second.register("mail.send", task)
    assert spec.fn is async_handler
    assert spec.is_async
    second.register("mail.send", async_handler)  # the same function: no clash


def test_async_detection() -> None:
    registry = Registry()
    assert registry.register("a", async_handler).is_async
    assert not registry.register("b", sync_handler).is_async
    assert registry.register("c", functools.partial(async_handler)).is_async
    assert not registry.register("d", functools.partial(sync_handler)).is_async
    assert not registry.register("e", lambda ctx, payload: payload).is_async


def test_a_name_is_registered_once() -> None:
    registry = Registry()
    registry.register("dup", async_handler)
    with pytest.raises(ValueError, match="'dup' is already registered"):
        registry.register("dup", sync_handler)

    with pytest.raises(ValueError, match="already registered"):

        @registry.handler("dup")
        async def other(ctx: Any, payload: Any) -> None:
            return None

    assert registry.get("dup") == HandlerSpec("dup", async_handler, True)
    # Registering the very same function again (a module imported twice) is harmless.
    registry.register("dup", async_handler)
    assert registry.names() == ["dup"]


@pytest.mark.parametrize(
    "name",
    ["", "has space", "with:colon", "{tagged}", "slash/name", "x" * 65, "émoji", "tab\t"],
)
def test_invalid_handler_names_are_refused(name: str) -> None:
    registry = Registry()
    with pytest.raises(ValidationError) as err:
        registry.register(name, async_handler)
    assert err.value.field == "handler name"
    with pytest.raises(ValidationError):
        registry.handler(name)(sync_handler)
    assert registry.names() == []


def test_valid_names_at_the_limits() -> None:
    registry = Registry()
    for name in ["a", "x" * 64, "A-Z.a_z-0.9"]:
        registry.register(name, async_handler)
    assert len(registry.names()) == 3


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"max_attempts": 0}, "max_attempts must be >= 1"),
        ({"max_attempts": -3}, "max_attempts must be >= 1"),
        ({"timeout": 0}, "timeout must be > 0"),
        ({"timeout": -1.5}, "timeout must be > 0"),
    ],
)
def test_invalid_handler_limits_are_refused(options: dict[str, Any], message: str) -> None:
    registry = Registry()
    with pytest.raises(ValueError, match=message):
        registry.register("job", async_handler, **options)
    assert registry.get("job") is None


def test_merged_holds_both_and_leaves_the_inputs_alone() -> None:
    builtin, custom = Registry(), Registry()
    builtin.register("echo", async_handler)
    builtin.register("sleep", async_handler)
    custom.register("reports.build", sync_handler, max_attempts=9)
    custom.register("echo", async_handler)  # the same function twice is no clash
    merged = builtin.merged(custom)
    assert merged.names() == ["echo", "reports.build", "sleep"]
    build = merged.get("reports.build")
    assert build is not None
    assert (build.fn, build.max_attempts) == (sync_handler, 9)
    # The inputs are left as they were, and later changes do not leak into the merge.
    assert builtin.names() == ["echo", "sleep"]
    assert custom.names() == ["echo", "reports.build"]
    builtin.register("late", async_handler)
    assert merged.get("late") is None


def test_merging_two_handlers_for_one_type_is_a_config_error() -> None:
    builtin, custom = Registry(), Registry()
    builtin.register("echo", async_handler)
    custom.register("echo", sync_handler)
    with pytest.raises(ConfigError) as caught:
        builtin.merged(custom)
    assert caught.value.problems == ["handler 'echo' is registered twice (pick another type name)"]


def test_an_object_with_an_async_call_is_an_async_handler() -> None:
    class Handler:
        async def __call__(self, ctx: object, payload: object) -> object:
            return payload

    assert Registry().register("obj", Handler()).is_async


# --- import_handler_modules --------------------------------------------------------------------


@pytest.fixture
def module_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    return tmp_path


def _module(directory: Path, source: str, monkeypatch: pytest.MonkeyPatch) -> str:
    name = f"conveyor_test_handlers_{uuid.uuid4().hex[:10]}"
    (directory / f"{name}.py").write_text(source)
    monkeypatch.delitem(sys.modules, name, raising=False)  # removed again after the test
    return name


def test_import_handler_modules_imports_every_module(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _module(module_dir, "LOADED = True\n", monkeypatch)
    import_handler_modules([good, "json"])
    assert sys.modules[good].LOADED is True
    import_handler_modules([])


def test_import_errors_list_every_failing_module(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    good = _module(module_dir, "LOADED = True\n", monkeypatch)
    broken = _module(module_dir, "raise RuntimeError('handler module is broken')\n", monkeypatch)
    syntax = _module(module_dir, "def f(:\n", monkeypatch)
    missing = f"conveyor_missing_{uuid.uuid4().hex[:10]}"
    with pytest.raises(ConfigError) as err:
        import_handler_modules([missing, good, broken, syntax, "json"])
    problems = err.value.problems
    assert len(problems) == 3
    assert all(p.startswith("CONVEYOR_HANDLERS: cannot import ") for p in problems)
    assert repr(missing) in problems[0]
    assert "No module named" in problems[0]
    assert repr(broken) in problems[1]
    assert "handler module is broken" in problems[1]
    assert repr(syntax) in problems[2]
    assert repr(good) not in str(err.value)
    assert all(repr(name) in str(err.value) for name in (missing, broken, syntax))
    assert sys.modules[good].LOADED is True  # the good module was imported all the same
