"""The development tools are their own distribution: `conveyor` carries neither the bench
nor the dev runner, and `conveyor-tools` plugs both into the `conveyor` command."""

from __future__ import annotations

import importlib.util
from importlib.metadata import distribution

from conveyor.cli import ENTRY_POINT_GROUP

TOOL_COMMANDS = {
    "bench": "conveyor_tools.bench.cli:bench_command",
    "dev": "conveyor_tools.devrun:dev_command",
}


def _commands(dist_name: str) -> dict[str, str]:
    eps = distribution(dist_name).entry_points.select(group=ENTRY_POINT_GROUP)
    return {ep.name: ep.value for ep in eps}


def test_the_product_registers_no_tool_command() -> None:
    assert set(_commands("conveyor")) == {"api", "worker", "scheduler"}


def test_the_tools_register_bench_and_dev_in_the_same_group() -> None:
    assert _commands("conveyor-tools") == TOOL_COMMANDS


def test_the_tools_depend_on_conveyor() -> None:
    requires = distribution("conveyor-tools").requires or []
    assert [r for r in requires if r.split(";")[0].strip() == "conveyor"] == ["conveyor"]


def test_the_worker_package_holds_no_tools() -> None:
    assert importlib.util.find_spec("conveyor.worker.bench") is None
    assert importlib.util.find_spec("conveyor.worker.devrun") is None
    assert importlib.util.find_spec("conveyor_tools.bench.stamp") is not None
