"""Handler modules are imported with the configured folders first on the import path."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from conveyor.errors import ConfigError
from conveyor.import_path import put_first_on_import_path


@pytest.fixture(autouse=True)
def restore_sys_path() -> Iterator[None]:
    saved = list(sys.path)
    yield
    sys.path[:] = saved


def test_relative_folders_come_from_the_base_and_go_first_in_order(tmp_path: Path) -> None:
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    folders = put_first_on_import_path(["a", str(tmp_path / "b")], base=str(tmp_path))
    assert folders == [str(tmp_path / "a"), str(tmp_path / "b")]
    assert sys.path[:2] == folders


def test_a_folder_already_on_the_path_moves_to_the_front(tmp_path: Path) -> None:
    sys.path.append(str(tmp_path))
    put_first_on_import_path(["."], base=str(tmp_path))
    assert sys.path[0] == str(tmp_path)
    assert sys.path.count(str(tmp_path)) == 1


def test_the_default_is_the_current_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert put_first_on_import_path(["."]) == [str(tmp_path)]


def test_a_missing_folder_is_a_configuration_error_and_changes_nothing(tmp_path: Path) -> None:
    before = list(sys.path)
    with pytest.raises(ConfigError, match=r"CONVEYOR_HANDLERS_PATH: .*nowhere' is not a folder"):
        put_first_on_import_path([".", "nowhere"], base=str(tmp_path))
    assert sys.path == before
