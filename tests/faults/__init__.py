"""Fault-injection scenarios against real processes (T1-T17 of docs/reliability.md): marked
`faults`, run with CI sizes in every test run, with full sizes by `make reliability`, which
also writes docs/reliability.md (tests/faults/report.py)."""
