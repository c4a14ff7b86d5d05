"""A client generated from the served `/openapi.json` by openapi-python-client covers every
operation, and it creates, gets, lists and cancels jobs against a real running API."""

from __future__ import annotations

import importlib
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest

from tests.api.conftest import make_settings, serve

TOKEN = "generated-client-token-0123456789"
PACKAGE = "generated_conveyor_client"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
GENERATE_TIMEOUT_S = 120


def snake_case(operation_id: str) -> str:
    """The module name the generator gives an operation: createJob -> create_job."""
    return re.sub(r"(?<!^)(?=[A-Z])", "_", operation_id).lower()


def generate(spec: Path, output: Path) -> str:
    """Run the generator's CLI (offline, no formatter hooks); its combined output."""
    config = output.parent / "generator.json"
    config.write_text(
        json.dumps(
            {
                "post_hooks": [],
                "package_name_override": PACKAGE,
                "project_name_override": "generated-conveyor-client",
            }
        )
    )
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "openapi_python_client",
            "generate",
            "--path",
            str(spec),
            "--output-path",
            str(output),
            "--config",
            str(config),
        ],
        capture_output=True,
        text=True,
        timeout=GENERATE_TIMEOUT_S,
        check=False,
    )
    text = done.stdout + done.stderr
    assert done.returncode == 0, text
    return text


@pytest.fixture
def api(redis_url: str, prefix: str) -> Iterator[str]:
    with serve(make_settings(redis_url, prefix, api_tokens=(TOKEN,))) as base_url:
        yield base_url


@pytest.fixture
def client_package(api: str, tmp_path: Path) -> Iterator[tuple[ModuleType, dict[str, Any], str]]:
    """The generated package, imported, with the document it was generated from."""
    served = httpx.get(f"{api}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"})
    assert served.status_code == 200
    spec = tmp_path / "openapi.json"
    spec.write_bytes(served.content)
    output = tmp_path / "client"
    log = generate(spec, output)
    assert "warning" not in log.lower(), log
    assert "will not be generated" not in log.lower(), log
    sys.path.insert(0, str(output))
    try:
        yield importlib.import_module(PACKAGE), served.json(), str(output / PACKAGE)
    finally:
        sys.path.remove(str(output))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def test_every_operation_is_generated(
    client_package: tuple[ModuleType, dict[str, Any], str],
) -> None:
    _, document, root = client_package
    expected = {
        (op["tags"][0], snake_case(op["operationId"]))
        for item in document["paths"].values()
        for method in METHODS
        if (op := item.get(method)) is not None
    }
    generated = {
        (path.parent.name, path.stem)
        for path in Path(root, "api").glob("*/*.py")
        if path.stem != "__init__"
    }
    assert generated == expected
    assert len(expected) == sum(
        1 for item in document["paths"].values() for method in METHODS if method in item
    )


def test_the_generated_client_creates_gets_lists_and_cancels_jobs(
    client_package: tuple[ModuleType, dict[str, Any], str], api: str, prefix: str
) -> None:
    package, _, _ = client_package
    jobs = f"{PACKAGE}.api.jobs"
    create_job = importlib.import_module(f"{jobs}.create_job")
    create_jobs = importlib.import_module(f"{jobs}.create_jobs")
    get_job = importlib.import_module(f"{jobs}.get_job")
    list_jobs = importlib.import_module(f"{jobs}.list_jobs")
    cancel_job = importlib.import_module(f"{jobs}.cancel_job")
    models = importlib.import_module(f"{PACKAGE}.models")
    queue = f"gen-{prefix}"
    payload = {"to": "ada@example.com", "n": [1, 2.5, None, True, {"deep": 2**64 - 1}]}

    with package.AuthenticatedClient(
        base_url=api, token=TOKEN, raise_on_unexpected_status=True
    ) as client:
        created = create_job.sync_detailed(
            client=client,
            body=models.JobCreate(type_="email.send", payload=payload, queue=queue, max_attempts=3),
            idempotency_key=f"order-{prefix}",
        )
        assert created.status_code == 201, created.content
        job = created.parsed
        assert isinstance(job, models.Job)
        assert (job.type_, job.queue, job.payload, job.max_attempts) == (
            "email.send",
            queue,
            payload,
            3,
        )
        assert job.status == models.JobStatus.PENDING
        repeat = create_job.sync_detailed(
            client=client,
            body=models.JobCreate(type_="email.send", payload=payload, queue=queue, max_attempts=3),
            idempotency_key=f"order-{prefix}",
        )
        assert repeat.status_code == 200
        assert repeat.parsed.id == job.id

        batch = create_jobs.sync_detailed(
            client=client,
            body=models.BatchCreate(
                jobs=[
                    models.BatchJobCreate(type_="report.build", queue=queue, delay_seconds=3600),
                    models.BatchJobCreate(type_="report.build", queue=queue, payload="x"),
                ]
            ),
        )
        assert batch.status_code == 201, batch.content
        scheduled, second = batch.parsed.jobs
        assert scheduled.status == models.JobStatus.SCHEDULED
        assert second.payload == "x"

        fetched = get_job.sync(job.id, client=client)
        assert isinstance(fetched, models.Job)
        assert (fetched.id, fetched.payload, fetched.attempts) == (job.id, payload, 0)

        listed = list_jobs.sync(
            client=client,
            queue=queue,
            status=[models.ListJobsStatusItem.PENDING, models.ListJobsStatusItem.SCHEDULED],
            created_after=datetime.now(UTC) - timedelta(hours=1),
            limit=2,
        )
        assert isinstance(listed, models.JobList)
        assert [j.id for j in listed.items] == [second.id, scheduled.id]  # newest first
        assert isinstance(listed.next_cursor, str)
        rest = list_jobs.sync(client=client, queue=queue, cursor=listed.next_cursor)
        assert [j.id for j in rest.items] == [job.id]

        canceled = cancel_job.sync_detailed(job.id, client=client, body=models.EmptyRequest())
        assert canceled.status_code == 200
        assert canceled.parsed.status == models.JobStatus.CANCELED
        assert get_job.sync(job.id, client=client).status == models.JobStatus.CANCELED
        again = cancel_job.sync_detailed(scheduled.id, client=client, body=models.EmptyRequest())
        assert again.status_code == 200
        assert again.parsed.status == models.JobStatus.CANCELED

        missing = get_job.sync_detailed("01J9Z8Q4X3K5M7N2P6R8T0V1W3", client=client)
        assert missing.status_code == 404
        assert isinstance(missing.parsed, models.Problem)
        assert missing.parsed.type_ == "urn:conveyor:problem:job-not-found"
