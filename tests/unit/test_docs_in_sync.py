"""The README's configuration table is generated from the settings table, never by hand."""

from __future__ import annotations

from pathlib import Path

from conveyor.config import config_table_markdown

ROOT = Path(__file__).resolve().parents[2]


def test_readme_configuration_table_matches_the_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    assert config_table_markdown().strip() in readme, (
        "README's configuration table is out of date: paste shared.config.config_table_markdown()"
    )
