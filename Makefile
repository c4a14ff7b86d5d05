# Conveyor: the two commands of the quick start are `make run` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: run test lint typecheck unit install clean faults reliability

## The project and, from tools/, the development commands (`conveyor dev`, `conveyor bench`).
$(STAMP): pyproject.toml tools/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]' -e ./tools
	touch $(STAMP)

install: $(STAMP)

## Run API + one worker + scheduler (starts a private redis-server when none answers).
run: $(STAMP)
	$(BIN)/conveyor dev

## The whole test suite: lint, types, then every test in parallel.
test: $(STAMP) lint typecheck
	$(BIN)/pytest -n auto

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

## mypy finds modules by folder name: lay the `conveyor` package out as links (shared/ is
## its root, api/ and worker/ its subpackages), the same mapping pyproject.toml installs.
## tools/conveyor_tools is a plain package: mypy finds it through mypy_path.
typecheck: $(STAMP)
	rm -rf build/typecheck && mkdir -p build/typecheck/conveyor
	ln -s $(CURDIR)/shared/* $(CURDIR)/api $(CURDIR)/worker build/typecheck/conveyor/
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/pytest -n auto tests/unit

clean:
	rm -rf $(VENV) build .conveyor .pytest_cache .mypy_cache .ruff_cache

## The fault-injection suite alone, CI sizes (it is also part of `make test`).
faults: $(STAMP)
	$(BIN)/pytest -n auto -m faults tests/faults

## Full-size fault scenarios, then rewrite docs/reliability.md with their figures.
reliability: $(STAMP)
	$(BIN)/python -m tests.faults.report
