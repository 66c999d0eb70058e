# Firewatch developer entry points. `make up` runs everything locally.

SHELL := /bin/bash
# pipefail: pip's status survives the `| grep` that filters its noise below.
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# This environment's pip config points at local wheel dirs; pip warns about each one.
PIP_FILTER := { grep -v "^WARNING: Location" || true; }

.PHONY: help venv up test test-deps lint bench clean distclean

help:
	@echo "make venv       create .venv and install firewatch[dev]"
	@echo "make up         run Temporal dev server + worker + API (Ctrl-C stops)"
	@echo "make test       run the test suite"
	@echo "make lint       ruff check, ruff format --check, mypy --strict (every package)"
	@echo "make bench      run the benchmarks"
	@echo "make clean      remove caches and build output (keeps .venv and .data)"
	@echo "make distclean  clean + remove .venv"

venv: $(STAMP)

$(PY):
	@py=$$(command -v python3.11 || command -v python3) || { echo "python3.11 or python3 is required" >&2; exit 1; }; \
	echo "creating $(VENV) with $$py"; \
	"$$py" -m venv $(VENV)

# Re-install whenever pyproject.toml changes.
$(STAMP): pyproject.toml | $(PY)
	$(PY) -m pip install -q --upgrade pip 2>&1 | $(PIP_FILTER)
	$(PY) -m pip install -q -e '.[dev]' 2>&1 | $(PIP_FILTER)
	@touch $@

up: venv
	$(PY) -m starter.up

# Real peers the tests run against, from Debian: Prometheus Alertmanager, Prometheus (the runbook
# `prometheus` checks query it), Chromium for the browser test of the Temporal UI (driven by
# Playwright from PyPI; never `playwright install`, which downloads a browser build of its own),
# and PostgreSQL's server binaries (tests/postgres.py runs a throw-away cluster of its own; the
# package's own `15 main` cluster is not used and may stay stopped).
test-deps:
	@missing=""; \
	command -v prometheus-alertmanager >/dev/null 2>&1 || missing="$$missing prometheus-alertmanager"; \
	command -v prometheus >/dev/null 2>&1 || missing="$$missing prometheus"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing$$missing (apt)"; \
		apt-get update -qq >/dev/null; \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	else \
		echo "!!! WARNING: not installed and we are not root:$$missing" >&2; \
		echo "!!!          their tests will fail: sudo apt-get install$$missing" >&2; \
	fi

# Lint first: CI fails on a ruff or mypy --strict error as on a failing test.
# Two test processes: most tests wait on servers and timers, so two halve the wall time on a
# 2-core machine. Each process starts its own shared servers (dev server, PostgreSQL).
test: venv test-deps lint
	$(PY) -m pytest -q -n 2

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: venv
	$(PY) benchmarks/lifecycle.py
	$(PY) benchmarks/alert_storm.py --compare-fast-lane
	$(PY) benchmarks/escalation_skew.py
	$(PY) benchmarks/scale_out.py
	$(PY) benchmarks/report.py

clean:
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache .hypothesis
	find . -path ./$(VENV) -prune -o -name __pycache__ -type d -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
