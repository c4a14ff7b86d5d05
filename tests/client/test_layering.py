"""What each client module loads: the HTTP client never the Redis store, the commands never
the `conveyor` group (no import cycle between conveyor.cli and conveyor.commands)."""

from __future__ import annotations

import subprocess
import sys

import pytest


def _loaded(module: str) -> set[str]:
    """The conveyor modules a fresh interpreter holds after importing `module`."""
    code = (
        f"import sys, {module}; "
        "print('\\n'.join(m for m in sys.modules if m.startswith('conveyor')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    return set(out.stdout.split())


@pytest.mark.parametrize(
    "module", ["conveyor.http_client", "conveyor.client_api", "conveyor.values"]
)
def test_the_http_client_and_the_interface_do_not_load_the_store(module: str) -> None:
    loaded = _loaded(module)
    assert module in loaded
    assert not {m for m in loaded if m == "conveyor.store" or m.startswith("conveyor.store.")}


def test_the_commands_do_not_import_the_group() -> None:
    loaded = _loaded("conveyor.commands")
    assert "conveyor.commands.jobs" in loaded
    assert "conveyor.cli" not in loaded
