# elite-exp: `make run` and `make test` set everything up on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=

.PHONY: install run test test-slow lint bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with its dev tools

run: $(STAMP)  ## the main job: ELITE (Deep SVDD score) on MNIST, normal class 0, r_p 0.1, 20 labels
	$(PY) -m elite_exp $(ARGS)

test: $(STAMP)  ## the default test suite (slow tests excluded)
	$(PY) -m pytest -q

test-slow: $(STAMP)  ## only the slow tests
	$(PY) -m pytest -q -m slow

bench: $(STAMP)  ## per-epoch cost of ELITE vs its base detectors, inference throughput (a few minutes on CPU)
	$(PY) scripts/bench.py $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check elite_exp tests scripts

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
