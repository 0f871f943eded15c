# Developer tasks. `make venv` once, then `make test` and `make lint`.

PYTHON ?= python3
VENV := .venv
VENV_PYTHON := $(VENV)/bin/python

.PHONY: venv system-packages demo-packages install-missing-packages test lint clean demo

# Create the virtual environment and install the package in editable mode with the
# development tools (pytest, hypothesis, ruff, mypy) and the command-line extras (rich).
venv:
	$(PYTHON) -m venv $(VENV)
	$(VENV_PYTHON) -m pip install -e '.[dev,cli]'

# Install the Debian packages that are missing: the C job server and its tools
# (gearman-job-server, gearman-tools) unless GEARGEVENT_GEARMAND names another gearmand,
# and python3-venv when the venv module cannot create environments. `system-packages`
# (for the tests and the benchmark) adds the Perl job server (gearman-server), which some
# tests compare against, and libgearman-dev for the benchmark's C worker; the demo needs
# neither. Installing needs root.
system-packages:
	@$(MAKE) --no-print-directory install-missing-packages WITH_TEST_PACKAGES=1

demo-packages:
	@$(MAKE) --no-print-directory install-missing-packages WITH_TEST_PACKAGES=

install-missing-packages:
	@packages=""; \
	if [ -z "$$GEARGEVENT_GEARMAND" ] && [ ! -x /usr/sbin/gearmand ]; then \
		packages=" gearman-job-server"; \
	fi; \
	command -v gearadmin >/dev/null || packages="$$packages gearman-tools"; \
	if [ -n "$(WITH_TEST_PACKAGES)" ]; then \
		[ -e /usr/share/perl5/Gearman/Server.pm ] || packages="$$packages gearman-server"; \
		[ -e /usr/include/libgearman-1.0/gearman.h ] || packages="$$packages libgearman-dev"; \
	fi; \
	if [ ! -x $(VENV_PYTHON) ] && ! $(PYTHON) -c 'import ensurepip, venv' 2>/dev/null; then \
		packages="$$packages python3-venv"; \
	fi; \
	if [ -n "$$packages" ]; then \
		if [ "$$(id -u)" -ne 0 ]; then \
			echo "make: missing Debian packages:$$packages; run make as root," \
				"or install them with: sudo apt-get install$$packages" >&2; \
			exit 1; \
		fi; \
		echo "make: installing Debian packages:$$packages"; \
		apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y $$packages; \
	fi

$(VENV_PYTHON):
	$(MAKE) venv

test: system-packages $(VENV_PYTHON)
	$(VENV_PYTHON) -m pytest -q

# The examples folder is checked only once it exists.
lint:
	$(VENV)/bin/ruff check geargevent tests $(wildcard examples)
	$(VENV)/bin/mypy geargevent

# Remove build output and tool caches. The virtual environment stays.
clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

# Demo: examples/demo.py starts a private gearmand on a free port of 127.0.0.1, the
# reverse worker and a batch of jobs, and stops all of them at the end.
demo: demo-packages $(VENV_PYTHON)
	$(VENV_PYTHON) examples/demo.py

# ---------------------------------------------------------------------------------------
# Benchmarks. bench/run.py creates its own environment bench/.env (with pygearman, gear
# and py-spy) from the project's Python, and compiles the C worker with gcc against
# libgearman-dev. `bench` takes under 15 minutes on 2 cores and rewrites
# docs/benchmarks.md; `bench-smoke` runs the same code with tiny sizes in under a minute
# and writes to a temporary folder.

.PHONY: bench bench-smoke

BENCH_PYTHON := $(if $(wildcard $(VENV_PYTHON)),$(VENV_PYTHON),$(PYTHON))

bench:
	$(BENCH_PYTHON) bench/run.py --command-label "make bench"

bench-smoke:
	$(BENCH_PYTHON) bench/run.py --smoke --command-label "make bench-smoke"
