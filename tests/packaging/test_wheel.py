"""The wheel as a user installs it: one import package, beside an application whose own
packages are called `api`, `worker` and `shared`.

The wheel is built from this checkout and installed into a fresh virtual environment
(dependencies from the package index, as a user gets them). The application's handlers
import the application's own `api` and `shared`; its folder is the current directory of
every process and first on PYTHONPATH, so any top-level name Conveyor installed would
clash with it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.helpers.redis_server import free_port
from tests.helpers.wait import eventually

ROOT = Path(__file__).resolve().parents[2]
PIP = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--quiet"]


@dataclass(frozen=True)
class Installed:
    wheel: Path
    venv: Path

    @property
    def conveyor(self) -> str:
        return str(self.venv / "bin" / "conveyor")


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([*PIP, "wheel", "--no-deps", "--wheel-dir", str(out), str(ROOT)], check=True)
    (wheel,) = out.glob("conveyor-*.whl")
    venv = out / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    subprocess.run([*PIP, "--python", python, "install", str(wheel)], check=True)
    return Installed(wheel, venv)


def test_the_wheel_installs_exactly_one_import_package(installed: Installed) -> None:
    wheel = zipfile.ZipFile(installed.wheel)
    names = wheel.namelist()
    top = {name.split("/")[0] for name in names if ".dist-info/" not in name}
    assert top == {"conveyor"}
    (top_level,) = [n for n in names if n.endswith(".dist-info/top_level.txt")]
    assert wheel.read(top_level).split() == [b"conveyor"]


def test_the_wheel_holds_every_folder_of_the_package(installed: Installed) -> None:
    """pyproject.toml lists the packages by hand: none may be forgotten, data included."""
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    homes = {"shared": "conveyor", "api": "conveyor/api", "worker": "conveyor/worker"}
    for folder, home in homes.items():
        for path in (ROOT / folder).rglob("*"):
            if path.is_dir() or "__pycache__" in path.parts or path.suffix == ".pyc":
                continue
            relative = path.relative_to(ROOT / folder).as_posix()
            assert f"{home}/{relative}" in names, f"{folder}/{relative} is not in the wheel"


APP_FILES = {
    # The application's own packages, named like Conveyor's folders.
    "api/__init__.py": "PRICE_CENTS = 1250\n",
    "shared/__init__.py": "def total(count: int) -> int:\n    return count * 2\n",
    "worker/__init__.py": "",
    "worker/tasks.py": """
        from pathlib import Path

        import conveyor
        from api import PRICE_CENTS
        from shared import total


        @conveyor.handler("shop.invoice")
        async def invoice(ctx: conveyor.JobContext, payload: dict) -> dict:
            return {"cents": PRICE_CENTS * total(payload["count"])}


        @conveyor.handler("shop.flaky", max_attempts=3)
        def flaky(ctx: conveyor.JobContext, payload: dict) -> int:
            if ctx.attempt == 1:
                raise RuntimeError("first attempt fails")
            return ctx.attempt
    """,
}


@pytest.fixture
def app(tmp_path: Path) -> Path:
    for name, text in APP_FILES.items():
        path = tmp_path / "app" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return tmp_path / "app"


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.terminate()
    for process in started:
        try:
            process.wait(15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


def _env(app: Path, redis_url: str, prefix: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CONVEYOR_", "PYTHON"))}
    env.update(
        PYTHONPATH=str(app),
        CONVEYOR_REDIS_URL=redis_url,
        CONVEYOR_KEY_PREFIX=prefix,
        CONVEYOR_RETRY_BASE_SECONDS="0.2",
        CONVEYOR_RETRY_MAX_SECONDS="0.5",
        CONVEYOR_API_AUTH="none",  # the test's own API, on the loopback only
    )
    return env


@pytest.mark.e2e
def test_api_worker_and_scheduler_beside_an_application_of_the_same_names(
    installed: Installed,
    app: Path,
    redis_url: str,
    prefix: str,
    processes: list[subprocess.Popen[bytes]],
    tmp_path: Path,
) -> None:
    env = _env(app, redis_url, prefix)
    helped = subprocess.run(
        [installed.conveyor, "api", "--help"], cwd=app, env=env, capture_output=True, text=True
    )
    assert helped.returncode == 0, helped.stderr
    assert "skipping command" not in helped.stderr

    port = free_port()
    logs = tmp_path / "logs"
    logs.mkdir()

    def start(*args: str, **extra: str) -> None:
        with (logs / f"{args[0]}.log").open("wb") as out:
            processes.append(
                subprocess.Popen(
                    [installed.conveyor, *args],
                    cwd=app,
                    env={k: v for k, v in {**env, **extra}.items() if v},
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
            )

    start("api", "--port", str(port))
    # Neither PYTHONPATH nor --path: the worker finds the application's worker.tasks in its
    # current folder, as the README says.
    start("worker", CONVEYOR_HANDLERS="worker.tasks", PYTHONPATH="")
    start("scheduler")
    api = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        try:
            return httpx.get(f"{api}/readyz", timeout=1).status_code == 200
        except httpx.HTTPError:
            return False

    eventually(ready, timeout=20, what="API ready")

    def create(job_type: str, payload: object) -> str:
        answer = httpx.post(f"{api}/jobs", json={"type": job_type, "payload": payload}, timeout=5)
        assert answer.status_code == 201, answer.text
        job_id: str = answer.json()["id"]
        return job_id

    def finished(job_id: str) -> dict[str, object] | None:
        job: dict[str, object] = httpx.get(f"{api}/jobs/{job_id}", timeout=5).json()
        return job if job["status"] in {"completed", "failed", "canceled"} else None

    invoice = create("shop.invoice", {"count": 3})
    flaky = create("shop.flaky", {})
    try:
        done = eventually(lambda: finished(invoice), timeout=20, what="invoice finished")
        retried = eventually(lambda: finished(flaky), timeout=30, what="flaky job finished")
    except AssertionError:
        for log in sorted(logs.iterdir()):
            print(log.name, log.read_text()[-3000:], sep="\n")
        raise
    assert done["status"] == "completed"
    assert done["result"] == {"cents": 1250 * 6}
    assert retried["status"] == "completed"
    assert retried["result"] == 2
    assert retried["attempts"] == 2
