"""The README's handler test is tests/testing/test_readme_example.py, character for
character, so the example the README shows is one the suite runs."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _readme_example() -> str:
    readme = (ROOT / "README.md").read_text("utf-8")
    section = readme.split("\n## Testing your handlers\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section shows one Python example"
    return str(blocks[0])


def test_the_readme_example_is_the_test_module() -> None:
    module = (Path(__file__).parent / "test_readme_example.py").read_text("utf-8")
    assert _readme_example() == module


def test_the_section_follows_writing_a_handler() -> None:
    headings = re.findall(r"^## (.+)$", (ROOT / "README.md").read_text("utf-8"), re.MULTILINE)
    assert headings[headings.index("Writing a handler") + 1] == "Testing your handlers"


def test_the_example_uses_only_the_public_names() -> None:
    imports = re.findall(r"^(?:from (\S+) import|import (\S+))", _readme_example(), re.M)
    modules = {a or b for a, b in imports}
    assert modules == {"typing", "pytest", "conveyor", "conveyor.testing"}


def test_the_readme_example_passes_where_no_redis_server_exists(tmp_path: Path) -> None:
    """Run on its own with a PATH that holds no redis-server: nothing can start one."""
    bin_dir = tmp_path / "bin"  # empty
    bin_dir.mkdir()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            str(Path(__file__).parent / "test_readme_example.py"),
        ],
        cwd=ROOT,
        env={**os.environ, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "2 passed" in done.stdout
