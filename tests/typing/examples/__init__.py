"""Examples that tests/typing type-checks with mypy; never imported by the tests."""
