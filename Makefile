# Two commands: `make run` serves chatd with demo data; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test lint install system-deps

install: $(VENV)/.installed

# The versions the locks name (tools/lock_constraints.py writes them from a venv).
$(VENV)/.installed: pyproject.toml constraints.txt constraints-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -c constraints-dev.txt --editable ".[dev]"
	touch $@

# `exec`: the recipe's shell becomes chatd, so make waits on chatd itself and sees its own
# exit status. chatd ends with 0 after an orderly stop on SIGINT or SIGTERM, so make prints
# no error; make itself, when it is the one signalled (Ctrl-C reaches every process in the
# terminal's group), still ends by that signal, silently, as GNU make does.
run: install
	exec $(BIN)/chatd serve --dev

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python tools/lock_constraints.py --check

system-deps:
	tests/system-deps

test: lint system-deps
	$(BIN)/pytest --numprocesses=2
