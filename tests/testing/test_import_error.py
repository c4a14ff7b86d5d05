"""Without fakeredis's Lua support, importing conveyor.testing says which extra to install."""

from __future__ import annotations

import subprocess
import sys

import pytest

# Makes the named module look uninstalled (find_spec returns None), then imports the helper.
_PROGRAM = """
import importlib.util, sys
real = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name == {missing!r} else real(name, *a)
try:
    import conveyor.testing
except ImportError as exc:
    print(exc)
else:
    print("imported")
"""


@pytest.mark.parametrize("missing", ["fakeredis", "lupa"])
def test_the_error_names_the_testing_extra(missing: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _PROGRAM.format(missing=missing)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == (
        f"conveyor.testing needs fakeredis with Lua support ({missing} is not installed): "
        "pip install 'conveyor[testing]'"
    )


def test_importing_conveyor_does_not_import_the_testing_helper() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys, conveyor; print('conveyor.testing' in sys.modules)"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "False"
