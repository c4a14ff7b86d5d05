"""mypy on typed tasks: strict passes on examples/typed_ok.py, and on examples/typed_bad.py
it reports exactly the errors its expect comments quote, each on the line below its
comment (a wrong payload type first).

mypy runs as a subprocess with a configuration of its own (strict, nothing relaxed for
tests), against a link tree of the `conveyor` package laid out as `make typecheck` does.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = Path(__file__).resolve().parent / "examples"
EXPECT = re.compile(r"^\s*# expect: (.+?)\s*$")
REPORTED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+): error: (?P<message>.+?)(?:  \[[\w-]+\])?$")

CONFIG = """\
[mypy]
python_version = 3.11
strict = True
warn_unreachable = True

[mypy-fakeredis.*,uvloop.*,msgpack.*]
ignore_missing_imports = True
"""


@pytest.fixture(scope="module")
def mypy_setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    """A link tree `conveyor/` (shared/'s entries, api, worker), a config, a cache shared by
    this module's runs; returns the work directory and the environment to run mypy in."""
    work = tmp_path_factory.mktemp("mypy")
    package = work / "tree" / "conveyor"
    package.mkdir(parents=True)
    for entry in (ROOT / "shared").iterdir():
        (package / entry.name).symlink_to(entry)
    for sub in ("api", "worker"):
        (package / sub).symlink_to(ROOT / sub)
    (work / "mypy.ini").write_text(CONFIG)
    env = {**os.environ, "MYPYPATH": str(work / "tree")}
    return work, env


def run_mypy(setup: tuple[Path, dict[str, str]], example: str) -> subprocess.CompletedProcess[str]:
    work, env = setup
    target = work / example  # a top-level module, outside the tests package
    target.write_text((EXAMPLES / example).read_text())
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "mypy",
            "--config-file",
            str(work / "mypy.ini"),
            "--cache-dir",
            str(work / "cache"),
            "--no-error-summary",
            "--hide-error-context",
            "--no-pretty",
            "--show-error-codes",
            str(target),
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )


def test_strict_mypy_passes_on_the_typed_example(mypy_setup: tuple[Path, dict[str, str]]) -> None:
    done = run_mypy(mypy_setup, "typed_ok.py")
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.strip() == ""


def test_mypy_rejects_each_wrong_use_in_the_bad_example(
    mypy_setup: tuple[Path, dict[str, str]],
) -> None:
    source = (EXAMPLES / "typed_bad.py").read_text().splitlines()
    expected = {
        (number + 1, match.group(1))  # the line below the comment
        for number, line in enumerate(source, start=1)
        if (match := EXPECT.match(line))
    }
    assert len(expected) >= 1
    done = run_mypy(mypy_setup, "typed_bad.py")
    assert done.returncode == 1, done.stdout + done.stderr
    reported: set[tuple[int, str]] = set()
    for line in done.stdout.splitlines():
        if ": note: " in line:  # details of an error, such as a protocol's conflicts
            continue
        match = REPORTED.match(line)
        assert match is not None, f"unexpected mypy output: {line}"
        assert match.group("file").endswith("typed_bad.py"), line
        reported.add((int(match.group("line")), match.group("message")))
    assert reported == expected
    # The wrong payload type is the point of the example: say so plainly if it regresses.
    [number] = [n for n, text in enumerate(source, start=1) if "build.enqueue(client, 42)" in text]
    wrong_payload = 'incompatible type "int"; expected "BuildRequest"'
    assert (number, f'Argument 2 to "enqueue" of "Task" has {wrong_payload}') in reported
