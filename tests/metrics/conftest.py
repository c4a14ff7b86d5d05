"""Fixtures of the metrics tests."""

from __future__ import annotations

from tests.e2e.conftest import system

__all__ = ["system"]
