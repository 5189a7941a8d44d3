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

.PHONY: help install dataset test synth tiny-model mine label train bench demo demo-ablation perf clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  make %-14s %s\n", $$1, $$2}' $(MAKEFILE_LIST)

ifeq ($(VENV),.venv)
$(STAMP): pyproject.toml
	@test -x $(PY) || python3 -m venv $(VENV)
	@# The interpreter's own pip on purpose: newer pips drop the machine's torch cap inside build
	@# environments, and deepspeed's sdist build would then download a multi-GB torch.
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

$(SYNTH_DIR)/manifest.jsonl: $(STAMP) $(wildcard fracdata/synth/*.py)
	$(FRACDATA) synth --out $(SYNTH_DIR) --seed $(SEED)

# synth writes all of these at once; the empty rule keeps `make -j dataset` from racing.
$(SYNTH_DIR)/labels.jsonl $(SYNTH_DIR)/gold.jsonl: $(SYNTH_DIR)/manifest.jsonl

DATASET_OUT := $(or $(OUT),data/processed/synthetic)
dataset: $(DATASET_OUT)/dataset_info.json ## build the LlamaFactory dataset (MANIFEST= LABELS= MANUAL= GOLD= OUT=)

$(DATASET_OUT)/dataset_info.json: $(STAMP) $(MANIFEST) $(LABELS) $(GOLD) $(SRC)
	$(FRACDATA) build --manifest $(MANIFEST) --labels $(LABELS) $(if $(MANUAL),--manual $(MANUAL)) \
	  $(if $(GOLD),--gold $(GOLD)) --out $(DATASET_OUT) --seed $(SEED)
	@touch $@  # the builder says "up to date" without writing; keep make from re-running it

mine: $(STAMP) ## mine figures, captions and excerpts from JATS/PDF papers (SOURCE= OUT= [SHARD=i/N])
	@test -n "$(SOURCE)" || { echo "error: make mine needs SOURCE=folder-or-files (JATS .nxml or PDF)"; exit 2; }
	$(FRACDATA) mine $(SOURCE) --out $(or $(OUT),data/mined) $(if $(SHARD),--shard $(SHARD))

label: $(STAMP) ## label MANIFEST= images with GPT-5.2 into OUT= (needs OPENAI_API_KEY; LABEL_ARGS="--budget-usd 50 --mode batch")
	$(FRACDATA) label --manifest $(MANIFEST) --out $(or $(OUT),data/labels/gpt.jsonl) $(LABEL_ARGS)

TINY_MODEL ?= models/tiny-qwen3vl
RECIPE ?= llamafactory_configs/smoke/tiny_qwen3vl_lora_sft.yaml
MODEL ?=
SET ?=

tiny-model: $(TINY_MODEL)/config.json ## build the tiny random Qwen3-VL (for tests and the demo only)

$(TINY_MODEL)/config.json: $(STAMP) fracdata/train/tiny_model.py
	$(FRACDATA) tiny-model $(TINY_MODEL)

train: $(STAMP) $(DATASET_OUT)/dataset_info.json $(if $(MODEL),,$(TINY_MODEL)/config.json) ## train a recipe (RECIPE= MODEL= SET="key=value ..."); default: CPU smoke run
	$(FRACDATA) train $(RECIPE) --dataset-dir $(DATASET_OUT) $(if $(MODEL),--model $(MODEL)) $(foreach s,$(SET),--set $(s))

BENCH_OUT := $(or $(OUT),reports/bench)
BENCH_MODELS ?= tiny-base tiny-ft
bench: $(STAMP) ## infer + score + report on the gold set, print the report path (OUT= GOLD= BENCH_MODELS= BENCH_ARGS=)
	$(FRACBENCH) run --models $(BENCH_MODELS) --gold $(GOLD) --out $(BENCH_OUT) $(BENCH_ARGS)

DEMO_OUT := $(or $(OUT),.)
demo: $(STAMP) ## the study in miniature, offline on CPU: synth + teacher, dataset, tiny model, train, bench (OUT=DIR)
	$(FRACDATA) demo --out $(DEMO_OUT)

demo-ablation: $(STAMP) ## ablations in miniature: full vs no_rotation, and a systematic-error teacher (OUT=DIR)
	$(FRACDATA) demo --ablation --out $(or $(OUT),demo-ablation)

perf: $(STAMP) ## print the throughput figures (benchmarks/perf/)
	$(PY) benchmarks/perf/build_throughput.py
	$(PY) benchmarks/perf/synth_throughput.py
	$(PY) benchmarks/perf/label_throughput.py
	$(PY) benchmarks/perf/mine_throughput.py
	$(PY) benchmarks/perf/rescore.py

clean: ## remove generated data, runs and reports (never the venv)
	rm -rf data/synthetic data/processed runs reports
