# tui-oauth developer entry points.
#   make test [PYTEST_ARGS=...] [PYTEST_WORKERS=4] [LINT=0]   lint, then the full suite
#                                 against real PostgreSQL + gnome-keyring
#   make run [ARGS=...]           run the app (installs only what running needs)
#   make lint                     ruff + mypy + lint-imports (the layering contracts)
#   make clean                    remove the venv and caches

SHELL := /bin/bash
.DEFAULT_GOAL := test

PYTHON ?= python3
VENV := .venv
# Two stamps: `make run` installs the package with what running needs; `make test`
# (or lint) adds the dev extra. Each re-installs when pyproject.toml is newer.
RUN_STAMP := $(VENV)/.tui-oauth-run-installed
VENV_STAMP := $(VENV)/.tui-oauth-installed
PYTEST_ARGS ?=
# Test processes. Many tests wait (on daemons, a server, the console's timers), so
# 4 processes on the 2-core machine finish first (3: 188 s, 6: 200 s); "worksteal"
# hands a finished worker the queued tests of a busy one, so the run does not end on
# one worker's long tail (162 s against 172-181 s with xdist's default "load").
PYTEST_WORKERS ?= 4
ARGS ?=

.PHONY: system-deps system-deps-run venv venv-run test run lint clean

# Debian packages: system-deps-run for running (python3-venv, gnome-keyring, dbus),
# system-deps for the tests as well (postgresql, tmux, systemd-analyze).
system-deps-run:
	@bash scripts/system-deps.sh run

system-deps:
	@bash scripts/system-deps.sh test

venv-run: $(RUN_STAMP)

venv: $(VENV_STAMP)

# Re-install only when pyproject.toml is newer than the stamp. The order-only
# system-deps make sure python3-venv is there (and keep the order under make -j).
$(RUN_STAMP): pyproject.toml | system-deps-run
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -e '.[postgres]'
	@touch $@

$(VENV_STAMP): pyproject.toml | system-deps
	@test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --disable-pip-version-check --quiet -e '.[dev,postgres]'
	@touch $@ $(RUN_STAMP)

# The static checks first (~15 s cold, ~3 s after): CI runs `make test` only, and the
# types (mypy --strict) and the layering contracts are part of what it must keep.
# LINT=0 skips them for a quick run of a few tests.
LINT ?= 1

test: system-deps venv
	@if [ "$(LINT)" != 0 ]; then $(MAKE) --no-print-directory lint; fi
	bash scripts/run-tests.sh -n $(PYTEST_WORKERS) --dist worksteal $(PYTEST_ARGS)

run: system-deps-run venv-run
	exec $(VENV)/bin/tui-oauth $(ARGS)

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports --no-cache
	@if command -v shellcheck >/dev/null 2>&1; then \
		echo "shellcheck .ci/run scripts/*.sh"; shellcheck .ci/run scripts/*.sh; fi

clean:
	rm -rf $(VENV) build dist .pytest_cache .mypy_cache .ruff_cache .hypothesis \
		snapshot_report.html *.egg-info
	find . -name __pycache__ -type d -prune -exec rm -rf {} +

# Pictures of each tab for the README (SVG; PNG too when rsvg-convert can be had).
.PHONY: screenshots
screenshots: venv
	@command -v rsvg-convert >/dev/null 2>&1 || { \
		if [ "$$(id -u)" = 0 ]; then apt-get install -y -q librsvg2-bin >/dev/null; \
		elif command -v sudo >/dev/null 2>&1; then sudo apt-get install -y -q librsvg2-bin >/dev/null; \
		fi; } || echo "rsvg-convert unavailable: SVG only"
	$(VENV)/bin/python scripts/screenshots.py screenshots
