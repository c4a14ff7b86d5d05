"""T16 against the live API process: schemathesis reads the OpenAPI document the running
`conveyor api` (uvicorn) serves, generates requests from it, valid and invalid ones, and
sends them over real HTTP with the API's bearer token, so the real server stack, real
headers and the real streaming body limits answer. (tests/contract runs the same document
in-process over ASGI.)

The whole run happens inside the test, as `schemathesis run` would do it: the probing,
explicit-example, coverage, fuzzing (`hostile_examples` generated cases per operation,
positive and negative) and stateful phases, over every operation of the document but
`GET /openapi.json` (schemathesis leaves out the operation that served the document), with
every check enabled, `negative_data_rejection` included: no server error; a documented
status code, content type, headers and body schema; valid data accepted, invalid data
refused; authentication enforced (a request stripped of its token, or with a wrong one, is
refused); allowed methods announced. One check does not apply and is off: `use_after_free`
expects a resource to be gone after a DELETE, but `DELETE /jobs/{id}` cancels the job,
which the document (and README) say stays readable, as `canceled`, and can be retried.
Job bodies go out with integral numbers written as integers, as tests/contract sends them
(see `canonical_numbers`). The run is driven through schemathesis's engine: its pytest
loader for a schema that exists only once a fixture ran (`schemathesis.pytest.from_fixture`)
fails under pytest 9.2.

Every HTTP request of the run, generated cases and the checks' own follow-up requests
alike, goes through a wrapper around `requests.Session.send` that reads Redis just before
the request is sent and just after its answer arrived: DBSIZE, the number of keys under the
deployment's prefix (a SCAN), and Redis's count of changes to its dataset, which any
write moves, even one that rewrites a value unchanged. Only the API runs (no worker, no
scheduler), so nothing else writes, which the wrapper verifies: the state before a request
must be the state after the previous one.

Pass: no 5xx; no check fails and the run reports no error, so every answer conforms to
the document; a refused request (4xx) leaves DBSIZE, the prefix's key count and the change
count as they were (it wrote nothing at all); every job a 201 announced is still in Redis
at the end unless it was canceled and then purged (as many as the purges reported); the
keys the run left are all under the prefix and accounted for by accepted requests; every
X-Correlation-ID sent back is well formed; every line the API logged is one JSON object.
"""

from __future__ import annotations

import json
import random
import re
import secrets
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest
import redis
import requests
import schemathesis
from schemathesis.engine import events

from conveyor.store.keys import Keys
from tests.e2e.system import System
from tests.faults.conftest import MakeRedis, MakeSystem
from tests.faults.harness import redisio
from tests.faults.harness.profile import Profile
from tests.faults.harness.recorder import Figures, Recorder

pytestmark = pytest.mark.faults

MAX_PAYLOAD = 16 * 1024  # small limits, so generated bodies reach them
MAX_BATCH = 20
CORRELATION = re.compile(r"[A-Za-z0-9._:-]{1,128}")
JOB_PATH = re.compile(r"/jobs/([0-9A-Z]{26})")
PURGE_PATH = re.compile(r"/queues/[^/]+/purge")
NOT_APPLICABLE = {"use_after_free": "DELETE /jobs/{id} cancels; the job stays readable"}
# Checks off for one operation: JSON Schema cannot say which cron expressions and time zone
# names are valid, so a schema-valid PUT /schedules/{name} may rightly be refused (its
# invalid data must still be: negative_data_rejection stays on).
NOT_APPLICABLE_TO = {("PUT", "/schedules/", "positive_data_acceptance")}


def _not_applicable(check: str, code_sample: str) -> bool:
    """Whether a failed check is one of NOT_APPLICABLE_TO: by the request it quotes (a
    stateful scenario's label names no operation)."""
    return any(
        check == name and f"-X {method} " in code_sample and path in code_sample
        for method, path, name in NOT_APPLICABLE_TO
    )


SHOWN = 10  # failures, errors and violations quoted in an assertion message


@dataclass(frozen=True, slots=True)
class Snapshot:
    """DBSIZE, the number of keys under the prefix (a SCAN), and the changes Redis made
    to its dataset so far (`rdb_changes_since_last_save`: the server never saves, so this
    counts every write, a value rewritten unchanged included)."""

    dbsize: int
    prefixed: int
    writes: int


@dataclass(frozen=True, slots=True)
class Violation:
    request: str
    status: int
    before: Snapshot
    after: Snapshot


def describe(request: requests.PreparedRequest) -> str:
    """Method, URL and the start of the body of a request, for messages."""
    body = request.body
    if isinstance(body, bytes | bytearray):
        shown = bytes(body[:200]).decode("utf-8", "replace")
    else:
        shown = "" if body is None else str(body)[:200]
    return f"{request.method} {request.url} {shown}".strip()


@dataclass
class KeyWatch:
    """Reads Redis around every HTTP request sent through `requests` and keeps the tally:
    statuses, refusals that wrote, the jobs created, canceled and purged, and the keys
    every kind of accepted request added."""

    r: redis.Redis
    prefix: str
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    refused: int = 0
    violations: list[Violation] = field(default_factory=list)
    server_errors: list[str] = field(default_factory=list)
    bad_correlation_ids: list[str] = field(default_factory=list)
    created: dict[str, str] = field(default_factory=dict)  # job id -> queue
    canceled: set[str] = field(default_factory=set)
    purged: int = 0
    keys_added: Counter[str] = field(default_factory=Counter)  # by kind of accepted request
    writes_accepted: int = 0  # dataset changes made while accepted requests were handled
    reads_that_wrote: list[str] = field(default_factory=list)
    drift: int = 0  # times Redis changed between two requests: something else wrote
    first: Snapshot | None = None
    last: Snapshot | None = None

    def snapshot(self) -> Snapshot:
        with self.r.pipeline(transaction=False) as pipe:
            pipe.dbsize()
            pipe.info("persistence")
            pipe.scan(0, match=f"{self.prefix}:*", count=100_000)
            dbsize, persistence, (cursor, names) = pipe.execute()
        prefixed = len(names)
        while cursor:
            cursor, names = self.r.scan(cursor, match=f"{self.prefix}:*", count=100_000)
            prefixed += len(names)
        writes = int(persistence["rdb_changes_since_last_save"])
        return Snapshot(int(dbsize), prefixed, writes)

    def wrap(self, send: Callable[..., requests.Response]) -> Callable[..., requests.Response]:
        """`requests.Session.send`, with a snapshot before and after each request."""

        def watched(
            session: requests.Session, request: requests.PreparedRequest, **kwargs: Any
        ) -> requests.Response:
            before = self.snapshot()
            if self.first is None:
                self.first = before
            if self.last is not None and before != self.last:
                self.drift += 1
            response = send(session, request, **kwargs)
            after = self.snapshot()
            self.observe(request, response, before, after)
            self.last = after
            return response

        return watched

    def observe(
        self,
        request: requests.PreparedRequest,
        response: requests.Response,
        before: Snapshot,
        after: Snapshot,
    ) -> None:
        status, method = response.status_code, request.method or ""
        path = urlsplit(request.url or "").path
        self.sent += 1
        self.statuses[status] += 1
        echoed = response.headers.get("x-correlation-id")
        if echoed is not None and not CORRELATION.fullmatch(echoed):
            self.bad_correlation_ids.append(f"{describe(request)}: {echoed!r}")
        if status >= 500:
            self.server_errors.append(f"{status} {describe(request)}")
        if 400 <= status < 500:
            self.refused += 1
            if after != before:
                self.violations.append(Violation(describe(request), status, before, after))
            return
        if method in ("GET", "HEAD"):
            if after != before:
                self.reads_that_wrote.append(f"{status} {describe(request)}")
            return
        self.keys_added[f"{method} {status}"] += after.dbsize - before.dbsize
        self.writes_accepted += after.writes - before.writes
        if method == "POST" and path in ("/jobs", "/jobs/batch") and status in (200, 201):
            body = json.loads(response.content)
            for job in body["jobs"] if path == "/jobs/batch" else [body]:
                self.created[str(job["id"])] = str(job["queue"])
        elif method == "DELETE" and status == 200 and (match := JOB_PATH.fullmatch(path)):
            self.canceled.add(match.group(1))
        elif method == "POST" and status == 200 and PURGE_PATH.fullmatch(path):
            self.purged += int(json.loads(response.content)["purged"])


@dataclass
class Run:
    """What the schemathesis run reported."""

    seed: int
    cases: int = 0
    checks: Counter[str] = field(default_factory=Counter)
    failures: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    phase_seconds: dict[str, float] = field(default_factory=dict)
    operations: set[str] = field(default_factory=set)
    stop_reason: str = ""
    seconds: float = 0.0


def canonical_numbers(value: Any) -> Any:
    """`value` with every integral float written as an integer (1e30 as 10**30).

    JSON Schema counts 1e30 as an integer, so the document (which bounds payload integers
    to 64 bits) calls a payload holding 1e30 invalid, while the API keeps a number written
    with a fraction or an exponent as a float, which any payload may hold (api/openapi.py
    says so, and tests/contract sends numbers the same way). Sent canonically, a number
    the document refuses is one the API refuses too."""
    if isinstance(value, list):
        return [canonical_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: canonical_numbers(item) for key, item in value.items()}
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def map_case(
    context: schemathesis.HookContext, case: schemathesis.Case[Any]
) -> schemathesis.Case[Any]:
    """Job creation bodies sent with their numbers written canonically."""
    if case.operation.path.startswith("/jobs") and isinstance(case.body, dict | list):
        case.body = canonical_numbers(case.body)
    return case


def run_schemathesis(url: str, headers: dict[str, str], examples: int) -> Run:
    """Every phase of a schemathesis run against the document at `url`, its outcome
    collected from the engine's events (failures deduplicated per operation and check)."""
    run = Run(seed=random.getrandbits(64))
    config = schemathesis.Config.from_dict(
        {
            "seed": run.seed,
            "headers": headers,
            "workers": 1,  # one request at a time: each is bracketed by two snapshots
            "continue-on-failure": True,
            "request-timeout": 30,
            "cache": {"enabled": False},
            "checks": {
                "enabled": True,
                **{name: {"enabled": False} for name in NOT_APPLICABLE},
            },
            "generation": {"mode": "all", "max-examples": examples, "database": "none"},
        }
    )
    schema = schemathesis.openapi.from_url(url, config=config, headers=headers, timeout=10)
    schema.hook(map_case)
    began = time.monotonic()
    phase_began: dict[str, float] = {}
    seen: set[tuple[str, str, str]] = set()
    for event in schemathesis.engine.from_schema(schema).execute():
        if isinstance(event, events.PhaseStarted):
            phase_began[event.phase.name.value] = time.monotonic()
        elif isinstance(event, events.PhaseFinished):
            name = event.phase.name.value
            took = time.monotonic() - phase_began.get(name, began)
            run.phase_seconds[name] = round(took, 2)
        elif isinstance(event, events.ScenarioFinished):
            recorder = event.recorder
            if event.phase.value != "stateful":  # stateful scenarios span operations
                run.operations.add(recorder.label)
            run.cases += len(recorder.cases)
            _record_checks(run, recorder, seen)
        elif isinstance(event, events.NonFatalError):
            run.errors.append(f"{event.label}: {type(event.value).__name__}: {event.value}")
        elif isinstance(event, events.FatalError):
            run.errors.append(f"fatal: {type(event.exception).__name__}: {event.exception}")
        elif isinstance(event, events.EngineFinished):
            run.stop_reason = event.stop_reason.value
            run.failures += [f"run: {f.title}\n{f.message}" for f in event.failures]
    run.seconds = round(time.monotonic() - began, 1)
    return run


def _record_checks(run: Run, recorder: Any, seen: set[tuple[str, str, str]]) -> None:
    """Counts a scenario's checks into `run` and adds its failures not `seen` yet."""
    for nodes in recorder.checks.values():
        for node in nodes:
            run.checks[node.name] += 1
            info = node.failure_info
            if info is None or _not_applicable(node.name, info.code_sample):
                continue
            if (recorder.label, node.name, info.failure.title) in seen:
                continue
            seen.add((recorder.label, node.name, info.failure.title))
            run.failures.append(
                f"{recorder.label}: {node.name}: {info.failure.title}\n"
                f"{info.failure.message}\n{info.code_sample}"
            )


@dataclass
class Live:
    system: System
    url: str  # of the redis-server
    watch: KeyWatch


@pytest.fixture
def live(make_redis: MakeRedis, make_system: MakeSystem, monkeypatch: pytest.MonkeyPatch) -> Live:
    """The API alone (nothing else may write to Redis) with a bearer token and small
    limits; every `requests` call of the test goes through the key watch."""
    server = make_redis()  # started with `--save ""`: the write counter never resets
    token = f"live-schemathesis-{secrets.token_hex(16)}"
    system = make_system(
        server.url,
        CONVEYOR_API_TOKENS=token,
        CONVEYOR_MAX_PAYLOAD_BYTES=str(MAX_PAYLOAD),
        CONVEYOR_MAX_BATCH_JOBS=str(MAX_BATCH),
    )
    system.token = token
    system.start_api()
    watch = KeyWatch(redisio.client(server.url), system.prefix)
    monkeypatch.setattr(requests.Session, "send", watch.wrap(requests.Session.send))
    return Live(system, server.url, watch)


def api_log_problems(system: System) -> list[str]:
    """Lines of the API's log that are not one JSON object each."""
    problems = []
    for line in system.processes[0].log_path.read_text().splitlines():
        try:
            if not isinstance(json.loads(line), dict):
                problems.append(line[:200])
        except ValueError:
            problems.append(line[:200])
    return problems


def test_live_api_against_its_document(live: Live, profile: Profile, recorder: Recorder) -> None:
    system, watch = live.system, live.watch
    run = run_schemathesis(f"{system.api}/openapi.json", system.headers, profile.hostile_examples)

    r, keys = redisio.client(live.url), Keys(system.prefix)
    gone = {
        job_id
        for job_id, queue in watch.created.items()
        if r.hget(keys.queue(queue).job(job_id), "status") is None
    }
    lost = sorted(gone - watch.canceled)  # only a canceled job may be purged
    final = watch.snapshot()
    first = watch.first or final
    unexplained = final.dbsize - first.dbsize - sum(watch.keys_added.values())
    log_problems = api_log_problems(system)
    recorder.record(
        Figures(
            scenario="T16 hostile input (schemathesis, live)",
            jobs=len(watch.created),
            faults=f"{watch.sent} schemathesis requests over HTTP to the live API: "
            f"{run.cases} cases over {len(run.operations)} operations, "
            f"{profile.hostile_examples} fuzzed examples per operation and mode",
            lost=len(lost),
            duplicated=0,
            explained=0,
            details={
                "seed": run.seed,
                "statuses": {str(k): v for k, v in sorted(watch.statuses.items())},
                "refused": watch.refused,
                "refusals_that_wrote": len(watch.violations),
                "server_errors": len(watch.server_errors),
                "check_runs": dict(sorted(run.checks.items())),
                "checks_off": NOT_APPLICABLE,
                "check_failures": len(run.failures),
                "run_errors": len(run.errors),
                "stop_reason": run.stop_reason,
                "phase_seconds": run.phase_seconds,
                "run_seconds": run.seconds,
                "jobs_canceled": len(watch.canceled),
                "jobs_purged": watch.purged,
                "jobs_gone": len(gone),
                "keys_before": first.dbsize,
                "keys_after": final.dbsize,
                "keys_outside_prefix": final.dbsize - final.prefixed,
                "keys_added_by": dict(sorted(watch.keys_added.items())),
                "keys_unexplained": unexplained,
                "writes_by_accepted_requests": watch.writes_accepted,
                "redis_changed_between_requests": watch.drift,
                "reads_that_wrote": watch.reads_that_wrote[:SHOWN],
                "bad_correlation_ids": len(watch.bad_correlation_ids),
                "api_log_lines_not_json": len(log_problems),
            },
        )
    )
    assert watch.writes_accepted > 0  # the watch does see writes
    assert run.checks["negative_data_rejection"] > 0
    assert watch.server_errors == [], "\n".join(watch.server_errors[:SHOWN])
    assert run.failures == [], "\n\n".join(run.failures[:SHOWN])
    assert run.errors == [], "\n".join(run.errors[:SHOWN])
    assert run.stop_reason == "completed"
    assert watch.violations == [], "\n".join(map(str, watch.violations[:SHOWN]))
    assert watch.drift == 0
    assert lost == []
    assert len(gone) == watch.purged
    assert unexplained == 0
    assert final.dbsize == final.prefixed
    assert watch.bad_correlation_ids == [], watch.bad_correlation_ids[:SHOWN]
    assert log_problems == [], log_problems[:SHOWN]
