# fracdata: mine -> label -> build -> train -> bench.   `make help` lists the targets.
# Every data artefact is a file target, so a second `make dataset` with nothing changed does nothing.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The virtualenv: built once as .venv and reused until pyproject.toml changes.
# VENV=/path/to/venv uses an existing virtualenv instead (it must already have fracdata[train,dev]).
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fracdata-installed
FRACDATA := $(PY) -m fracdata
FRACBENCH := $(PY) -m fracbench
export HF_HUB_OFFLINE := 1
export DISABLE_VERSION_CHECK := 1
export TOKENIZERS_PARALLELISM := false

SRC := $(wildcard fracdata/*.py fracdata/*/*.py) fracdata/taxonomy.yaml $(wildcard fracdata/templates/*.j2)

# Embedded synthetic sample (fracdata synth) and its defaults for `make dataset`.
SYNTH_DIR ?= data/synthetic
MANIFEST ?= $(SYNTH_DIR)/manifest.jsonl
LABELS ?= $(SYNTH_DIR)/labels.jsonl
MANUAL ?= $(SYNTH_DIR)/manual
GOLD ?= $(SYNTH_DIR)/gold.jsonl
SEED ?= 0

.PHONY: help install dataset test synth mine label train bench demo demo-ablation perf clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

ifeq ($(VENV),.venv)
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[train,dev]'
	@touch $@
	@echo "wrote $(VENV) (fracdata[train,dev] installed)"
else
$(STAMP):
	@$(PY) -c "import fracdata, llamafactory" 2>/dev/null || { echo "error: VENV=$(VENV) lacks fracdata[train,dev]: run $(PY) -m pip install -e '.[train,dev]'"; exit 2; }
endif

install: $(STAMP) ## create the virtualenv (.venv) with fracdata[train,dev], once

test: $(STAMP) ## run the test suite (offline; CPU only)
	$(PY) -m pytest -q

synth: $(SYNTH_DIR)/manifest.jsonl ## generate the embedded synthetic corpus (SYNTH_DIR=, SEED=)

$(SYNTH_DIR)/manifest.jsonl: $(STAMP) fracdata/synth.py
	$(FRACDATA) synth --out $(SYNTH_DIR) --seed $(SEED)

DATASET_OUT := $(or $(OUT),data/processed/synthetic)
dataset: $(DATASET_OUT)/dataset_info.json ## build the LlamaFactory dataset (MANIFEST= LABELS= MANUAL= GOLD= OUT=)

$(DATASET_OUT)/dataset_info.json: $(STAMP) $(MANIFEST) $(LABELS) $(GOLD) $(SRC)
	$(FRACDATA) build --manifest $(MANIFEST) --labels $(LABELS) $(if $(MANUAL),--manual $(MANUAL)) \
	  $(if $(GOLD),--gold $(GOLD)) --out $(DATASET_OUT) --seed $(SEED)

clean: ## remove generated data, runs and reports (never the venv)
	rm -rf data/synthetic data/processed runs reports
