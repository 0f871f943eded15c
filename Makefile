# Developer tasks. `make venv` once, then `make test` and `make lint`.

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python

.PHONY: venv test lint clean demo

# Create the virtual environment and install the package in editable mode with the
# development tools (pytest, hypothesis, ruff, mypy) and the command-line extras (rich).
venv:
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install -e '.[dev,cli]'

test:
	$(VENV_PYTHON) -m pytest -q

# The examples folder is checked only once it exists.
lint:
	$(VENV)/bin/ruff check geargevent tests $(wildcard examples)
	$(VENV)/bin/mypy geargevent

# Remove build output and tool caches. The virtual environment stays.
clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# ---------------------------------------------------------------------------------------
# Demo. examples/demo.py is maintained with the examples.

demo:
	$(VENV_PYTHON) examples/demo.py
