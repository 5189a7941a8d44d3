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

.PHONY: help install dataset test test-fast synth tiny-model mine label train bench release vllm-env demo demo-ablation demo-labels perf clean

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

test: $(STAMP) ## run every test, slow ones included (CPU only; what .ci/run calls)
	$(PY) -m pytest -q

test-fast: $(STAMP) ## the inner loop: every test not marked slow (pytest -m "not slow")
	$(PY) -m pytest -q -m "not slow"

# Label Studio pins openai<2, so it gets its own virtualenv, built once like .venv (the version
# is in the stamp's name: bumping LABEL_STUDIO_VERSION rebuilds it). Tests need it (make test
# depends on it). The recipe also migrates an empty database once (~100 s on 2 cores) into
# $(LS_VENV)/template/, which each fresh data dir starts from (a fresh server then starts in ~10 s).
# LS_ENV keeps it from calling home: no PyPI version check, no analytics, no Sentry.
LABEL_STUDIO_VERSION := 1.23.2
LS_VENV ?= .venv-label-studio
LS_STAMP := $(LS_VENV)/.installed-$(LABEL_STUDIO_VERSION)
LS_PYTHON ?= python3
LS_PORT ?= 8080
LS_DATA ?= data/label-studio
LS_ENV := LATEST_VERSION_CHECK=false COLLECT_ANALYTICS=false SENTRY_DSN= FRONTEND_SENTRY_DSN=
export FRACDATA_LABEL_STUDIO_VENV := $(abspath $(LS_VENV))
.PHONY: label-studio label-studio-start
test: $(LS_STAMP)

$(LS_STAMP):
	@test -x $(LS_VENV)/bin/python || $(LS_PYTHON) -m venv $(LS_VENV)
	$(LS_VENV)/bin/python -m pip install -q 'label-studio==$(LABEL_STUDIO_VERSION)'
	@rm -rf $(LS_VENV)/template && mkdir -p $(LS_VENV)/template
	$(LS_ENV) LABEL_STUDIO_BASE_DATA_DIR=$(abspath $(LS_VENV))/template $(LS_VENV)/bin/label-studio version \
	  >$(LS_VENV)/template/migrate.log 2>&1 || { tail -20 $(LS_VENV)/template/migrate.log; exit 1; }
	@rm -f $(LS_VENV)/template/.env  # a generated SECRET_KEY: every data dir makes its own
	@touch $@
	@echo "wrote $(LS_VENV) (label-studio $(LABEL_STUDIO_VERSION), its own virtualenv) and its migrated empty database"

label-studio: $(LS_STAMP) ## create Label Studio's own virtualenv (.venv-label-studio, label-studio==1.23.2), once

label-studio-start: $(LS_STAMP) ## start Label Studio on 127.0.0.1 only (LS_PORT=8080, LS_DATA=data/label-studio)
	@test -e $(LS_DATA)/label_studio.sqlite3 || { mkdir -p $(LS_DATA) && cp $(LS_VENV)/template/label_studio.sqlite3 $(LS_DATA)/; }
	$(LS_ENV) $(LS_VENV)/bin/label-studio start --no-browser --internal-host 127.0.0.1 --port $(LS_PORT) --data-dir $(LS_DATA)

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

.PHONY: harvest
harvest: $(STAMP) ## download open-access fractography articles (OUT= EMAIL= [QUERY= LIMIT= SINCE= SHARD=i/N])
	$(FRACDATA) harvest --out $(or $(OUT),data/harvested) $(if $(EMAIL),--email $(EMAIL)) $(if $(QUERY),--query '$(QUERY)') \
	  $(if $(LIMIT),--limit $(LIMIT)) $(if $(SINCE),--since $(SINCE)) $(if $(SHARD),--shard $(SHARD))

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

RELEASE_OUT ?= data/release/$(notdir $(DATASET_OUT))
release: $(STAMP) $(DATASET_OUT)/dataset_info.json ## the built dataset as Parquet + Hub dataset card (RELEASE_OUT= REPO=ORG/NAME; no upload: docs/release.md)
	$(FRACDATA) release dataset $(DATASET_OUT) --out $(RELEASE_OUT) $(if $(REPO),--repo $(REPO))

# `vllm serve` for scoring at scale (docs/bench.md) runs from its own virtualenv: LlamaFactory 0.9.5
# pins vllm<=0.11, whose LoRA path crashes on Qwen3-VL. Built once, on a CUDA machine with the network.
VLLM_VENV ?= .venv-vllm
vllm-env: $(VLLM_VENV)/bin/vllm ## a virtualenv with a current vLLM for `vllm serve` (docs/bench.md; CUDA machine)

$(VLLM_VENV)/bin/vllm:
	@test -x $(VLLM_VENV)/bin/python || python3 -m venv $(VLLM_VENV)
	$(VLLM_VENV)/bin/pip install -q "vllm>=0.14"
	@echo "wrote $(VLLM_VENV) (vllm installed): $(VLLM_VENV)/bin/vllm serve ... (docs/bench.md)"

DEMO_OUT := $(or $(OUT),.)
demo: $(STAMP) ## the study in miniature, offline on CPU: synth + teacher, dataset, tiny model, train, bench (OUT=DIR)
	$(FRACDATA) demo --out $(DEMO_OUT)

demo-ablation: $(STAMP) ## ablations in miniature: full vs no_rotation, and a systematic-error teacher (OUT=DIR)
	$(FRACDATA) demo --ablation --out $(or $(OUT),demo-ablation)

demo-labels: $(STAMP) ## several teachers in miniature: aggregate, probe suspects, inheritance, probe row (OUT=DIR; docs/labels.md)
	$(FRACDATA) demo --labels --out $(or $(OUT),demo-labels)

perf: $(STAMP) ## print the throughput figures (benchmarks/perf/)
	$(PY) benchmarks/perf/build_throughput.py
	$(PY) benchmarks/perf/synth_throughput.py
	$(PY) benchmarks/perf/label_throughput.py
	$(PY) benchmarks/perf/mine_throughput.py
	$(PY) benchmarks/perf/harvest_throughput.py
	$(PY) benchmarks/perf/rescore.py
	$(PY) benchmarks/perf/feature_probs.py
	$(PY) benchmarks/perf/serve_fuzz.py --count 1000
	$(PY) benchmarks/perf/serve_memory.py

clean: ## remove generated data, runs and reports (never the venv)
	rm -rf data/synthetic data/processed runs reports
