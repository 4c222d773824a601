# elite-exp: `make run` and `make test` set everything up on first use.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
ARGS ?=
DEMO ?= outputs/demo
RUNS ?= outputs
REPORT_DIR ?= outputs/report
# the published records of the paper's methods and of those beyond it
RECORDS := docs/results/paper/records docs/results/beyond/report/records

.PHONY: install run test test-slow lint report figures beyond-table bench clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)  ## create .venv and install the package with its dev tools

run: $(STAMP)  ## the main job, offline: every method on one digits split at r_p 0.1/0.3/0.5, its table and Fig. 3
	$(PY) -m elite_exp -m +experiment=demo out_dir=$(DEMO) $(ARGS) || [ $$? -eq 1 ]  # 1: some runs failed (said); report the rest
	$(PY) -m elite_exp.report $(DEMO) --out $(DEMO)/report --only fig3
	$(PY) -m elite_exp.figures $(DEMO) --out $(DEMO)/report --only fig3
	@sed '/per normal class:/,$$d' $(DEMO)/report/fig3.md

test: $(STAMP)  ## the default test suite (slow tests excluded), one worker per core
	$(PY) -m pytest -q -n auto

test-slow: $(STAMP)  ## only the slow tests
	$(PY) -m pytest -q -m slow

bench: $(STAMP)  ## ELITE vs its base, the step vs plain PyTorch, inference, runs/hour of an 8-run slice (~15 min on 2 CPU cores; ARGS=--no-slice: ~4)
	$(PY) scripts/bench.py $(ARGS)

lint: $(STAMP)
	$(PY) -m ruff check elite_exp tests scripts

report: $(STAMP)  ## tables (CSV, Markdown) of every run under RUNS into REPORT_DIR
	$(PY) -m elite_exp.report $(RUNS) --out $(REPORT_DIR)

figures: $(STAMP)  ## Figures 3-7 (PNG, PDF) of every run under RUNS into REPORT_DIR
	$(PY) -m elite_exp.figures $(RUNS) --out $(REPORT_DIR)

beyond-table: $(STAMP)  ## the methods beyond the paper against ELITE and the baselines on the report data (MNIST classes 5-9, FMNIST, CIFAR-10) into docs/results/beyond/table
	$(PY) -m elite_exp.report --only fig3 --eta-m 1,0.3 --out docs/results/beyond/table \
	  $(wildcard $(foreach r,$(RECORDS),$(r)/mnist/*/class[5-9] $(r)/fmnist $(r)/cifar10))

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
