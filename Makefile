# ALPS developer entry points. Everything installs into a project-local .venv from python3.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test lint typecheck unit bench bench-full demo chaos clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

lint: $(STAMP)
	$(PY) -m ruff check .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest

test: lint typecheck unit

bench: $(STAMP)
	$(PY) -m bench

# Every benchmark with the cluster one in full (4, 7 and 10 validators, 10,000-block
# catch-up; ~30 min on 2 cores, run it on a quiet machine): prints, and writes the
# results with the machine and command to docs/bench-results.md (raw: .json beside it).
bench-full: $(STAMP)
	$(PY) -m bench --full --write docs/bench-results.md

# A local 4-validator consortium running the licensing web with simulated devices, in
# .demo/ (Ctrl-C stops it; running it again resumes the same chain; rm -rf .demo resets).
demo: $(STAMP)
	$(PY) -m cli demo --dir .demo

# A seeded fault-injection run of a 4-node cluster (tests/chaos). SEED defaults to a
# random one (printed, with the replay command); DURATION is seconds of faults.
SEED ?=
DURATION ?= 180
chaos: $(STAMP)
	$(PY) -m tests.chaos --duration $(DURATION) $(if $(SEED),--seed $(SEED),)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache
