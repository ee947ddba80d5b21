# Seeded variational dropout: the op, its benchmark harness and its reports.
# `make` lists the targets. The harness runs from the repo root; the op is installed (editable, so
# always this tree's kernels/) as the package seeded_variational_dropout.

.DEFAULT_GOAL := help
SHELL := /bin/bash

PYTHON ?= python3
VENV ?= .venv
# PY: the interpreter that runs everything. Point it elsewhere (e.g. PY=python3 on a machine whose
# Python already has torch, triton and hydra) and no virtual environment is made.
PY ?= $(VENV)/bin/python
SETUP := $(if $(filter $(VENV)/bin/python,$(PY)),$(VENV)/.installed,)
export PYTHONPATH := $(CURDIR)$(if $(PYTHONPATH),:$(PYTHONPATH),)

DTYPE ?= fp32
ARGS ?=
RESULTS ?= results
BASELINE ?=
CANDIDATE ?=
GPUS ?= 1
LAUNCHER ?=
REF ?= origin/main
PAIRS ?= 4
AB_OUT ?= results/ab/latest
# The variables reach the Python entry points through the environment, never through a shell
# re-reading them (runners/make_command.py): `DTYPE='fp32; echo X'` is a dtype Hydra refuses, not a
# command, and ARGS is split as shell words without variable, command or glob expansion.
# make does not expand them either: each holds the text given (`$(shell ...)` in ARGS stays text).
PASSED_ON := DTYPE ARGS RESULTS BASELINE CANDIDATE GPUS LAUNCHER REF PAIRS AB_OUT ARGS_AB ARGS_JUDGE ARGS_COMPARE
$(foreach name,$(PASSED_ON),$(eval override $(name) := $$(value $(name))))
CI_BASELINE := $(or $(BASELINE),results/nvidia-h200/ci-baseline.csv)
CI_CANDIDATE := $(or $(CANDIDATE),results/ci/candidate.csv)
export $(PASSED_ON) CI_BASELINE CI_CANDIDATE
RUN := $(PY) -m runners.make_command

.PHONY: help install test test-slow test-all lint bench bench-ci bench-ci-compare bench-ab report compare merge clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-18s %s\n", $$1, $$2}'
	@echo "  variables: DTYPE=fp16|bf16|fp32|fp64|all  ARGS='hydra overrides'  PY=python3 (an interpreter with torch, triton, hydra: no .venv)"
	@echo "             RESULTS=dir  BASELINE=a.csv CANDIDATE=b.csv  GPUS=n LAUNCHER=local|slurm  REF=git-ref PAIRS=n"
	@echo "             ARGS_AB='key=value' ARGS_JUDGE='key=value' ARGS_COMPARE='key=value'"
	@echo "  exit status: make exits 2 whenever a recipe fails, whatever its own status (GNU make's rule); its"
	@echo "             last line 'make: *** [...] Error N' carries N. A script that must tell a regression (1)"
	@echo "             from unusable input (2) runs the comparison itself:"
	@echo "             .venv/bin/python -m reports.compare baseline=a.csv candidate=b.csv; echo \$$?"

install: $(SETUP) ## make .venv: CPU torch (from this disk if present), the op (editable) and the harness's dependencies

$(VENV)/.installed: pyproject.toml
	@echo "== making $(VENV): about 90 s the first time (pip's progress follows)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --progress-bar on --upgrade pip
	@echo "== torch (CPU build; from this disk if present)"
	$(VENV)/bin/python -c "import torch" 2>/dev/null || $(VENV)/bin/python -m pip install --progress-bar on "torch==2.13.0"
	@echo "== the op (editable) and the harness's dependencies"
	$(VENV)/bin/python -m pip install --progress-bar on -e ".[bench,dev,launchers]"
	touch $@
	@echo "== $(VENV) is ready: run commands as .venv/bin/python ..., or activate it (source .venv/bin/activate)"

lint: $(SETUP) ## ruff
	$(PY) -m ruff check .

# The fast tests run in a process per core (pytest-xdist, a dev dependency), each process's torch on
# one thread so the processes do not contend for the cores: on a 2-core machine 120 s against 250 s
# in one process. TEST_WORKERS=0: one process. `tests` is named so that its conftest.py also loads in
# xdist's controlling process, which collects nothing and writes the summary (the deselected gpu tests).
TEST_WORKERS ?= auto

test: $(SETUP) ## ruff, then the fast tests: all but those marked slow (CPU: the Triton kernels run in the interpreter)
	$(PY) -m ruff check .
	@echo "== the fast tests, in $(TEST_WORKERS) processes: those marked slow are deselected (make test-slow runs them, make test-all everything)"
	OMP_NUM_THREADS=$${OMP_NUM_THREADS:-1} $(PY) -m pytest -m "not slow" -n $(TEST_WORKERS) tests

test-slow: $(SETUP) ## the tests marked slow: the C++ build, sweeps in subprocesses, torch.compile, the wheel
	$(PY) -m pytest -m slow

test-all: $(SETUP) ## ruff, then every test, slow ones included (what CI runs: .ci/run)
	$(PY) -m ruff check .
	$(PY) -m pytest

bench: $(SETUP) ## run the sweep: DTYPE=fp16|bf16|fp32|fp64|all, ARGS="shape=... p=..."; GPUS=N LAUNCHER=local|slurm: N jobs; CPU smoke without a GPU
	$(RUN) runners.bench 'dtype={DTYPE}' 'gpus={GPUS}' 'launcher={LAUNCHER}' '{ARGS...}'

bench-ci: $(SETUP) ## the reduced CI sweep (GPU), written to results/ci/candidate.csv
	$(RUN) runners.bench experiment=ci '{ARGS...}'

bench-ci-compare: bench-ci ## bench-ci, then compare it with the committed H200 baseline (ARGS_COMPARE='key=value')
	$(RUN) reports.compare 'baseline={CI_BASELINE}' 'candidate={CI_CANDIDATE}' '{ARGS_COMPARE...}'

bench-ab: $(SETUP) ## A/B on this GPU: the CI sweep alternately with REF's code and this tree's, PAIRS pairs, then the paired verdict (fails when seeded regressed: see "exit status" below)
	$(RUN) runners.ab 'ref={REF}' 'pairs={PAIRS}' 'out={AB_OUT}' '{ARGS_AB...}'
	$(RUN) reports.ab 'dir={AB_OUT}' '{ARGS_JUDGE...}'

compare: $(SETUP) ## compare two result CSVs: BASELINE=... CANDIDATE=...; prints the table, writes it only with ARGS="markdown=PATH"; see "exit status" below
	$(RUN) reports.compare 'baseline={BASELINE}' 'candidate={CANDIDATE}' '{ARGS...}'

report: $(SETUP) ## figures and tables from results/; the README shows every published GPU folder (RESULTS=results/<gpu>: that folder too)
	$(RUN) reports.render '{RESULTS...}'

merge: $(SETUP) ## merge part files of a multi-job sweep into results/<gpu>/<dtype>.csv (GPUS=N runs do it at the end)
	$(RUN) runners.merge '{RESULTS...}'

clean: ## remove caches and Hydra outputs (never results/)
	rm -rf outputs multirun .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
