# Pathways: `make run` starts the platform, `make test` runs the whole suite.
# Every install step lives here so a fresh machine needs nothing done by hand.
SHELL := /bin/bash
.SHELLFLAGS := -eo pipefail -c
# This machine's pip config names local mirrors that may be absent; hide that noise only.
QUIET_PIP := 2>&1 | { grep -v 'is ignored: it is neither' || true; }
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP_RUNTIME := $(VENV)/.installed-runtime
STAMP_DEV := $(VENV)/.installed-dev

.PHONY: run test bench soak demo lint lock browser wrk bootstrap clean help

help:
	@echo "make run    - install, create database/roles/schemas, migrate, start every service"
	@echo "make test   - install test tools and run the whole suite"
	@echo "make bench  - run the benchmark suite and write bench/RESULTS.md (BENCH_ARGS=--quick: 2 min)"
	@echo "make soak   - five minutes of mixed traffic, memory and backlog checks"
	@echo "make demo   - start the platform if needed and simulate a programme"
	@echo "make lint   - ruff"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade "pip==25.3" $(QUIET_PIP)

$(STAMP_RUNTIME): requirements.lock pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet --require-hashes -r requirements.lock $(QUIET_PIP)
	$(BIN)/pip install --quiet --no-deps -e . $(QUIET_PIP)
	@touch $@

$(STAMP_DEV): requirements-dev.lock pyproject.toml $(STAMP_RUNTIME)
	$(BIN)/pip install --quiet --require-hashes -r requirements-dev.lock $(QUIET_PIP)
	@touch $@

# The dashboard test drives Debian's Chromium through Playwright (Playwright's own
# browser download cannot reach its CDN from here, and is not needed).
browser:
	@command -v chromium >/dev/null || { \
	  echo "installing Debian's chromium for the dashboard browser test"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends chromium >/dev/null; }; }

run: $(STAMP_RUNTIME)
	$(BIN)/pathways run

bootstrap: $(STAMP_RUNTIME)
	$(BIN)/pathways bootstrap

test: $(STAMP_DEV) browser
	$(BIN)/python -m pytest $(PYTEST_ARGS)

# The benchmarks drive HTTP load with Debian's wrk (a C load generator: the client must
# not be the bottleneck on a two-core machine).
wrk:
	@command -v wrk >/dev/null || { \
	  echo "installing Debian's wrk for the benchmarks"; \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends wrk >/dev/null 2>&1 || \
	  { $$SUDO apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -q --no-install-recommends wrk >/dev/null; }; }

# BENCH_ARGS passes options through, e.g. make bench BENCH_ARGS=--quick
bench: $(STAMP_DEV) wrk
	$(BIN)/python -m bench $(BENCH_ARGS)

soak: $(STAMP_DEV)
	$(BIN)/python -m bench.soak

# Options pass through, e.g. make demo DEMO_ARGS="--people 1000 --seed 7" (see docs/demo.md).
demo: $(STAMP_RUNTIME)
	$(BIN)/pathways demo $(DEMO_ARGS)

lint: $(STAMP_DEV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Re-resolve the pinned, hashed lock files after editing pyproject.toml.
lock:
	$(BIN)/pip install --quiet "uv==0.13.9"
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv pip compile pyproject.toml --generate-hashes --python-version 3.11 -o requirements.lock -q
	UV_PYTHON_DOWNLOADS=never $(BIN)/uv pip compile pyproject.toml --extra dev --generate-hashes --python-version 3.11 -o requirements-dev.lock -q

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
