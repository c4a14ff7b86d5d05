"""T17 (code): nothing in the product evaluates data. An AST scan of api/, worker/ and
shared/ finds no pickle, marshal, shelve, eval, exec, compile or unsafe yaml.load, and
payloads and results go through msgpack (shared/codec.py) and JSON only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.faults

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("api", "worker", "shared")
FORBIDDEN_MODULES = {"pickle", "cPickle", "marshal", "shelve", "dill", "cloudpickle", "jsonpickle"}
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}


def _sources() -> list[Path]:
    return sorted(p for package in PACKAGES for p in (ROOT / package).rglob("*.py"))


def _findings(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    found: list[str] = []
    where = path.relative_to(ROOT)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [(node.module or "").split(".")[0]]
        else:
            names = []
        line = getattr(node, "lineno", 0)
        found += [f"{where}:{line}: imports {n}" for n in names if n in FORBIDDEN_MODULES]
        if isinstance(node, ast.Call):
            func = node.func
            name = func.id if isinstance(func, ast.Name) else None
            if name in FORBIDDEN_CALLS:
                found.append(f"{where}:{node.lineno}: calls {name}()")
            if (
                isinstance(func, ast.Attribute)
                and func.attr in ("load", "load_all")
                and isinstance(func.value, ast.Name)
                and func.value.id == "yaml"
            ):
                found.append(f"{where}:{node.lineno}: yaml.{func.attr} (use safe_load)")
    return found


def test_no_module_evaluates_or_unpickles_data() -> None:
    sources = _sources()
    assert len(sources) > 30  # the scan really saw the code
    findings = [f for path in sources for f in _findings(path)]
    assert findings == []


def test_payloads_are_encoded_with_msgpack_and_json_only() -> None:
    codec = (ROOT / "shared" / "codec.py").read_text()
    tree = ast.parse(codec)
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in (
            node.names if isinstance(node, ast.Import) else [ast.alias(node.module or "")]
        )
    }
    assert {"msgpack", "json"} <= imported
    assert imported & FORBIDDEN_MODULES == set()
    # Decoding never turns extension types or raw bytes into objects.
    assert "unpackb(" in codec
    assert "ext_hook" not in codec
