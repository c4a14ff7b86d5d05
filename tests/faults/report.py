"""Runs the fault suite and writes docs/reliability.md from what it measured.

    python -m tests.faults.report                  # full profile (make reliability)
    python -m tests.faults.report --profile ci     # the CI sizes, quicker
    python -m tests.faults.report --no-run DIR     # rewrite the page from an earlier run

Each scenario records its figures through the recorder fixture (one JSON line per
scenario in $CONVEYOR_FAULTS_RESULTS); pass or fail comes from pytest's JUnit report.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from tests.faults.harness.profile import PROFILE_ENV
from tests.faults.harness.recorder import RESULTS_ENV, read_results

ROOT = Path(__file__).resolve().parents[2]
OUTPUT = ROOT / "docs" / "reliability.md"
JUNIT = "junit.xml"
META = "run.json"


def run_suite(profile: str, results: Path, workers: str) -> dict[str, Any]:
    env = {**os.environ, PROFILE_ENV: profile, RESULTS_ENV: str(results)}
    date = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    began = time.monotonic()
    command = [
        sys.executable, "-m", "pytest", "tests/faults", "-m", "faults", "-n", workers,
        "-p", "no:cacheprovider", "-q", f"--junitxml={results / JUNIT}",
        # Full-size scenarios run for minutes; the suite's 120 s per test is for CI sizes.
        f"--timeout={900 if profile == 'full' else 120}",
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, env=env, check=False)
    meta = {
        "profile": profile,
        "seconds": round(time.monotonic() - began),
        "exit_status": done.returncode,
        "date": date,
        "pytest_workers": workers,
    }
    (results / META).write_text(json.dumps(meta))
    return meta


def outcomes(results: Path) -> dict[str, str]:
    """nodeid -> passed | failed | xfail | skipped, from the JUnit report."""
    path = results / JUNIT
    if not path.exists():
        return {}
    found: dict[str, str] = {}
    for case in ET.parse(path).getroot().iter("testcase"):
        nodeid = case.get("classname", "").replace(".", "/") + ".py::" + case.get("name", "")
        state = "passed"
        for child in case:
            if child.tag in ("failure", "error"):
                state = "failed"
            elif child.tag == "skipped":
                kind = child.get("type", "")
                state = "xfail" if "xfail" in kind else "skipped"
        found[nodeid] = state
    return found


def machine() -> dict[str, str]:
    redis_server = subprocess.run(
        ["redis-server", "--version"], capture_output=True, text=True, check=False
    ).stdout.strip()
    return {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}",
        "python": platform.python_version(),
        "redis-server": redis_server.split(" sha=")[0],
        "redis-py": version("redis"),
        "uvloop": version("uvloop"),
        "conveyor": version("conveyor"),
    }


RESULT_WORDS = {
    "passed": "pass",
    "failed": "**FAIL**",
    "xfail": "**fail (known defect)**",
    "skipped": "skipped",
}


def _order(record: dict[str, Any]) -> tuple[int, str, str]:
    """By the plan's test number (T1, T3, ... T17), then name."""
    name = str(record["scenario"])
    number = name[1:].split()[0] if name.startswith("T") else ""
    return (int(number) if number.isdigit() else 99, name, str(record["nodeid"]))


def headlines(records: list[dict[str, Any]]) -> list[str]:
    """Figures the issue asks for in words, when the run measured them."""
    lines: list[str] = []
    for r in records:
        d = r["details"]
        if "gb_per_million_waiting" in d:
            lines.append(
                f"- **Redis memory per million waiting jobs: {d['gb_per_million_waiting']} GB** "
                f"({d['bytes_per_waiting_job']} bytes per waiting job: `used_memory` growth over "
                f"{d['waiting_at_peak']:,} waiting jobs with ~150-byte payloads; one job hash "
                f"alone, `MEMORY USAGE`: {d['job_hash_memory_usage_bytes']} bytes). Single POST "
                f"p99 {d['probe_p99_loaded_ms']} ms under overload, "
                f"{d['probe_p99_unloaded_ms']} ms before it."
            )
        if "missing_201s" in d:
            lines.append(
                f"- {r['scenario']}: {d['missing_201s']} jobs answered 201 were missing after "
                f"the restarts (the loss window seen), `aof_delayed_fsync` = "
                f"{d['aof_delayed_fsync']}."
            )
        if "answers_during_pause" in d:
            lines.append(
                f"- {r['scenario']}: requests during the pause were answered "
                f"{d['answers_during_pause']} in at most {d['slowest_answer_during_pause_s']} s "
                f"(the API's Redis deadline is {d['api_deadline_s']} s)."
            )
    return lines


def _recovery(value: Any) -> str:
    return "—" if value is None else f"{value:g} s"


def table(records: list[dict[str, Any]], states: dict[str, str]) -> list[str]:
    lines = [
        "| scenario | jobs | faults injected | lost | duplicated (explained by reclaims) "
        "| max recovery | result |",
        "|---|---:|---|---:|---:|---:|---|",
    ]
    for r in sorted(records, key=_order):
        state = RESULT_WORDS.get(states.get(r["nodeid"], ""), "not run")
        lines.append(
            f"| {r['scenario']} | {r['jobs']:,} | {r['faults']} | {r['lost']} "
            f"| {r['duplicated']} ({r['explained']}) | {_recovery(r['recovery_s'])} | {state} |"
        )
    return lines


def details(records: list[dict[str, Any]]) -> list[str]:
    lines: list[str] = []
    for r in sorted(records, key=_order):
        figures = ", ".join(f"{k} = {json.dumps(v)}" for k, v in sorted(r["details"].items()))
        lines.append(f"- **{r['scenario']}**: {figures}")
    return lines


def other_checks(states: dict[str, str], recorded: set[str]) -> list[str]:
    lines = ["| test | result |", "|---|---|"]
    for nodeid, state in sorted(states.items()):
        if nodeid not in recorded:
            lines.append(f"| `{nodeid.removeprefix('tests/faults/')}` | {RESULT_WORDS[state]} |")
    return lines


def render(results: Path) -> str:
    meta = json.loads((results / META).read_text()) if (results / META).exists() else {}
    records = read_results(results)
    states = outcomes(results)
    env = machine()
    head = (ROOT / "tests" / "faults" / "report_text.md").read_text()
    workers = meta.get("pytest_workers", "?")
    run = [
        f"- date: {meta.get('date', '?')}; profile: `{meta.get('profile', '?')}`; "
        f"wall time: {meta.get('seconds', '?')} s with `pytest -n {workers}`",
        *(f"- {k}: {v}" for k, v in env.items()),
    ]
    return "\n".join(
        [
            head.split("<!-- TABLE -->")[0].rstrip(),
            "",
            "## Last run",
            "",
            *run,
            "",
            *table(records, states),
            "",
            *headlines(sorted(records, key=_order)),
            "",
            "Other checks of the suite (no figures):",
            "",
            *other_checks(states, {r["nodeid"] for r in records}),
            "",
            "## Figures per scenario",
            "",
            *details(records),
            "",
            head.split("<!-- TABLE -->")[1].strip(),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--profile", choices=["full", "ci"], default="full")
    parser.add_argument("--workers", default="2", help="pytest-xdist workers (default 2)")
    parser.add_argument("--output", type=Path, default=OUTPUT)
    parser.add_argument("--no-run", type=Path, metavar="DIR", help="use an earlier run's results")
    args = parser.parse_args(argv)
    if args.no_run:
        results = args.no_run
        status = 0
    else:
        results = Path(tempfile.mkdtemp(prefix="conveyor-faults-"))
        status = run_suite(args.profile, results, args.workers)["exit_status"]
    args.output.write_text(render(results))
    print(f"wrote {args.output} (results in {results})")
    return int(status)


if __name__ == "__main__":
    raise SystemExit(main())
