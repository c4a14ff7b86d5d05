"""Scenario figures: each fault test records what it measured, before it asserts.

With ``CONVEYOR_FAULTS_RESULTS`` set (the report generator sets it), every record is
appended as one JSON line to ``<dir>/results.jsonl``; without it the figures only go to the
test's output. Pass or fail comes from the test's own assertions, which run either way.
"""

from __future__ import annotations

import fcntl
import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

RESULTS_ENV = "CONVEYOR_FAULTS_RESULTS"
RESULTS_FILE = "results.jsonl"


@dataclass(slots=True)
class Figures:
    """One scenario's row of docs/reliability.md."""

    scenario: str  # short name, e.g. "T1 worker SIGKILL storm"
    jobs: int  # jobs accepted (201) during the scenario
    faults: str  # what was injected, e.g. "30 worker SIGKILLs"
    lost: int  # accepted jobs that never reached their expected end
    duplicated: int  # executions beyond the first, from the ledger
    explained: int  # of those, how many a recorded reclaim accounts for
    recovery_s: float | None = None  # longest fault -> service-restored time measured
    details: dict[str, Any] = field(default_factory=dict)


class Recorder:
    def __init__(self, nodeid: str, profile: str) -> None:
        self.nodeid = nodeid
        self.profile = profile
        self.records: list[Figures] = []

    def record(self, figures: Figures) -> Figures:
        self.records.append(figures)
        line = {"nodeid": self.nodeid, "profile": self.profile, "at": time.time()}
        line.update(asdict(figures))
        text = json.dumps(line, sort_keys=True, default=str)
        print(f"fault figures: {text}")  # shown with -rA or on failure
        directory = os.environ.get(RESULTS_ENV)
        if directory:
            path = Path(directory) / RESULTS_FILE
            path.parent.mkdir(parents=True, exist_ok=True)
            with path.open("a") as out:  # several xdist workers may append at once
                fcntl.flock(out, fcntl.LOCK_EX)
                out.write(text + "\n")
        return figures


def read_results(directory: Path) -> list[dict[str, Any]]:
    path = directory / RESULTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
