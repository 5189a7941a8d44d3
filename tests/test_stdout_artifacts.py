"""A command whose output is an artifact prints only that artifact on stdout (issue 18).

Each command runs as a user runs it: a subprocess with DISABLE_VERSION_CHECK=1 (LlamaFactory then
logs `[WARNING|...] Version checking has been disabled` through a StreamHandler on sys.stdout), its
stdout piped into the artifact's consumer: yaml.safe_load, `bash -n`, json.loads. The subprocesses
run four at a time (each imports torch, transformers and LlamaFactory: ~9 s of CPU).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml

from fracdata.taxonomy import load_taxonomy
from fracdata.train import recipes

ROOT = Path(__file__).resolve().parents[1]
PAPER = "llamafactory_configs/qwen3vl_32b_lora_sft_ds3.yaml"
NOISE = "Version checking has been disabled"
# Every test here shares one fixture that runs ~30 subprocesses, each importing torch,
# transformers and LlamaFactory: 4.3 min on 2 cores, so the whole module is `slow`.
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def outputs(synth_small, tmp_path_factory):
    """stdout/stderr of every artifact command, run concurrently once for the module."""
    from fracdata.dataset.config import Inputs
    from fracdata.dataset.pipeline import build

    dataset = tmp_path_factory.mktemp("artifacts") / "ds"
    build(Inputs(synth_small / "manifest.jsonl", [synth_small / "labels.jsonl"], synth_small / "manual",
                 [synth_small / "gold.jsonl"]), dataset, log=lambda *a: None)
    run_dir = tmp_path_factory.mktemp("runs")
    commands = {f"render {p}": ["recipes", "render", str(p)] for p in recipes.find_recipes()}
    commands.update({
        "list": ["recipes", "list"],
        "taxonomy": ["taxonomy"],
        "sbatch": ["train", PAPER, "--dataset-dir", str(dataset), "--output-dir", str(run_dir / "slurm"),
                   "--slurm", "--nodes", "1", "--gpus-per-node", "4"],
        "plan": ["train", PAPER, "--plan", "--json", "--gpus", "1", "--gpu-memory-gb", "141"],
    })
    env = {**os.environ, "DISABLE_VERSION_CHECK": "1", "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}"}

    def run(args):
        return subprocess.run([sys.executable, "-m", "fracdata", *args], capture_output=True, text=True, env=env,
                              cwd=ROOT)

    with ThreadPoolExecutor(max_workers=4) as pool:
        done = dict(zip(commands, pool.map(run, commands.values())))
    return done, tmp_path_factory.mktemp("sbatch")


def test_every_recipe_render_is_yaml_and_nothing_else(outputs):
    done, _ = outputs
    found = recipes.find_recipes()
    assert len(found) == 13
    hub = []
    for path in found:
        proc = done[f"render {path}"]
        assert proc.returncode == 0, proc.stderr[-2000:]
        data = yaml.safe_load(proc.stdout)  # what `> run.yaml && llamafactory-cli train run.yaml` reads
        assert isinstance(data, dict) and "extends" not in data, path
        assert proc.stdout.startswith(f"# Resolved from {path} by `fracdata recipes render`\n"), path
        assert NOISE in proc.stderr and NOISE not in proc.stdout  # the library did log; it went to stderr
        if not data.get("model_name_or_path", "models/").startswith("models/") and data.get("stage"):
            hub.append(path.name)  # the paper recipe and its ablations: the builder's split, no val_size
            assert data["eval_dataset"] == "val" and "val_size" not in data and "dataset_dir" not in data, path
    assert len(hub) == 6


def test_recipe_list_and_taxonomy_print_only_their_rows(outputs):
    done, _ = outputs
    lines = done["list"].stdout.splitlines()
    assert [line.split()[1] for line in lines] == [str(p.relative_to(recipes.RECIPES_ROOT))
                                                  for p in recipes.find_recipes()]
    assert done["list"].stderr.endswith(f"13 recipes under {recipes.RECIPES_ROOT}\n")
    tax = load_taxonomy()
    rows = done["taxonomy"].stdout.splitlines()
    assert [r.split()[0] for r in rows] == tax.ids
    assert re.fullmatch(rf"taxonomy v{tax.version}: {len(tax.ids)} of {len(tax.ids)} features, \d+ groups\n",
                        done["taxonomy"].stderr)


def test_sbatch_on_stdout_is_a_bash_script(outputs):
    done, tmp = outputs
    proc = done["sbatch"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.startswith("#!/bin/bash\n# Run: sbatch train.sbatch\n")
    script = tmp / "job.sbatch"
    script.write_text(proc.stdout)  # `> job.sbatch && bash -n job.sbatch`
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    # what a person needs went to stderr: the checks, the plan, where the run folder is
    for line in ("checked ", "effective batch 4 = 1 per device x 1 accumulation x 4 GPUs", "wrote ",
                 "sbatch script for 1 nodes x 4 GPUs (effective batch 4) follows on stdout"):
        assert line in proc.stderr and line not in proc.stdout


def test_plan_json_is_one_json_object(outputs):
    proc = outputs[0]["plan"]
    assert proc.returncode == 0, proc.stderr[-2000:]
    plan = json.loads(proc.stdout)
    assert (plan["deepspeed"], plan["per_device_train_batch_size"], plan["gradient_accumulation_steps"]) == (None, 4, 1)
    assert "plan for 1 node(s) x 1 GPU(s) of 141 GB" in proc.stderr and NOISE in proc.stderr
