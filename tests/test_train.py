"""`fracdata train` end to end on CPU: the tiny model, the builder's dataset, real LlamaFactory.

Lean by design: 6 steps on 40 rows per run. The ZeRO-3 test compiles DeepSpeed's CPU
communication op on its first run on a machine (~1 min, cached in ~/.cache/torch_extensions).
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fracdata.train import recipes, token_budget
from fracdata.cli import main

SMOKE = recipes.RECIPES_ROOT / "smoke" / "tiny_qwen3vl_lora_sft.yaml"
LM_LINEARS = {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}


@pytest.fixture(scope="module")
def dataset(synth_dataset):
    """The real path: fracdata synth -> fracdata build (conftest)."""
    return synth_dataset


def _train(args, dataset, tiny_model, out):
    return main(["train", *args, "--dataset-dir", str(dataset), "--model", str(tiny_model), "--output-dir", str(out)])


def _check_run(out: Path, tiny_model: Path, fused: bool = True):
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert (adapter["r"], adapter["lora_alpha"]) == (16, 32)
    assert {m.rsplit(".", 1)[-1] for m in adapter["target_modules"]} == LM_LINEARS
    assert (out / "adapter_model.safetensors").stat().st_size > 0
    state = json.loads((out / "trainer_state.json").read_text())
    train = [h["loss"] for h in state["log_history"] if "loss" in h]
    evals = [h["eval_loss"] for h in state["log_history"] if "eval_loss" in h]
    assert len(train) == 6 and all(math.isfinite(x) for x in train)
    assert len(evals) >= 3 and all(math.isfinite(x) for x in evals)  # steps 2, 4, 6 (+ the final evaluation)
    # early stopping was live: its callback state is saved, best checkpoint tracked
    assert state["stateful_callbacks"]["EarlyStoppingCallback"]["args"]["early_stopping_patience"] == 2
    assert state["best_metric"] == min(evals[:3])
    resolved = yaml.safe_load((out / "resolved.yaml").read_text())
    # LlamaFactory loads the tiny model through a view whose config.json asks for the fused patch
    # embedding (fracdata/train/fusion.py), or the model itself where it keeps the Conv3d (ZeRO-3);
    # the adapter names the model itself as its base
    view = str(out.resolve() / "model-view") if fused else str(tiny_model.resolve())
    assert resolved["model_name_or_path"] == view
    assert adapter["base_model_name_or_path"] == str(tiny_model.resolve())
    assert resolved["early_stopping_steps"] == 2 and resolved["output_dir"] == str(out.resolve())
    prov = json.loads((out / "provenance.json").read_text())
    assert set(prov) == {"created", "recipe", "sets", "command", "resolved_sha256", "git", "dataset", "model",
                         "patch_embed", "packages", "python", "launch", "host"}
    # what moves CPU floats: the CPU, its cores and the thread settings the run had (provenance.host)
    assert set(prov["host"]) == {"cpu", "cpu_flags", "cores", "threads", "python", "platform", "packages"}
    assert prov["host"]["cores"] == len(os.sched_getaffinity(0)) and prov["host"]["packages"]["torch"] == prov["packages"]["torch"]
    assert prov["patch_embed"] == {"fused": fused, "model": str(tiny_model.resolve()), "loaded_from": view}
    assert (prov["launch"]["effective_batch"], prov["launch"]["processes"]) == (4, 1)
    # the planner's LoRA count (fracdata/train/sizes.py) is what peft built: (in + out) x r per linear
    from safetensors import safe_open

    from fracdata.train import sizes

    with safe_open(str(out / "adapter_model.safetensors"), "pt") as f:
        trained = sum(f.get_tensor(k).numel() for k in f.keys())
    assert trained == sizes.sizes(sizes.load_config(tiny_model), lora_rank=16).lora
    assert prov["packages"]["llamafactory"] == "0.9.5" and prov["dataset"]["card_sha256"] is not None
    return resolved


@pytest.mark.slow
def test_lora_smoke_train(dataset, tiny_model, tmp_path, capfd):
    out = tmp_path / "run"
    assert _train([], dataset, tiny_model, out) == 0
    _check_run(out, tiny_model)
    printed = capfd.readouterr().out
    budget = token_budget.check({"dataset_dir": str(dataset), "dataset": "full", "eval_dataset": "val",
                                 "cutoff_len": 10 ** 6, "model_name_or_path": str(tiny_model),
                                 "image_max_pixels": 65536})
    assert (f"checked {budget.rows:,} rows: longest needs {budget.need} tokens ({budget.image} image + "
            f"{budget.text} text, tokenizer) <= cutoff_len 256\n") in printed
    assert f"running: llamafactory-cli train {out.resolve()}/resolved.yaml\n" in printed

    # a second run into the same folder is refused; --resume picks the last checkpoint
    assert _train([], dataset, tiny_model, out) == 2
    assert "already holds a run" in capfd.readouterr().err
    assert _train(["--resume", "--dry-run"], dataset, tiny_model, out) == 0
    assert f"resuming from {out.resolve()}/checkpoint-6\n" in capfd.readouterr().out
    assert yaml.safe_load((out / "resolved.yaml").read_text())["resume_from_checkpoint"] == f"{out.resolve()}/checkpoint-6"

    # merge through llamafactory-cli export; the merged model loads and generates
    merged = _merge(out, tiny_model, tmp_path / "merged")
    _generate_matches_adapter(merged, tiny_model, out)


def _merge(adapter: Path, tiny_model: Path, export_dir: Path) -> Path:
    _, config = recipes.resolve("merge/tiny_qwen3vl_lora_merge.yaml", [
        f"model_name_or_path={tiny_model}", f"adapter_name_or_path={adapter}", f"export_dir={export_dir}"])
    config = recipes.validate(config, "merge")
    path = adapter.parent / "merge.yaml"
    path.write_text(recipes.render(config))
    env = {**os.environ, "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ["PATH"]}
    proc = subprocess.run([sys.executable, "-m", "llamafactory.cli", "export", str(path)], env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return export_dir


def _generate_matches_adapter(merged: Path, tiny_model: Path, adapter: Path):
    import numpy as np
    import torch
    from peft import PeftModel
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from fracdata.answer import render_prompt

    processor = AutoProcessor.from_pretrained(merged)
    model = AutoModelForImageTextToText.from_pretrained(merged).eval()
    image = Image.fromarray((np.random.RandomState(0).rand(96, 128, 3) * 255).astype("uint8"))
    messages = [{"role": "user", "content": [{"type": "image"},
                                             {"type": "text", "text": render_prompt().replace("<image>", "")}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    inputs = processor(images=[image], text=[text], return_tensors="pt")
    assert "mm_token_type_ids" in inputs
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=4)
        assert out.shape[1] == inputs["input_ids"].shape[1] + 4
        # merged weights = base + adapter: same logits as the unmerged pair
        base = AutoModelForImageTextToText.from_pretrained(tiny_model).eval()
        plain = base(**inputs).logits
        peft = PeftModel.from_pretrained(base, adapter).eval()
        want = peft(**inputs).logits
        got = model(**inputs).logits
    assert torch.allclose(got, want, atol=1e-5)
    assert not torch.allclose(got, plain, atol=1e-5)  # the adapter changed something


@pytest.mark.slow
def test_zero3_launch_one_process(dataset, tiny_model, tmp_path, capfd):
    out = tmp_path / "ds3"
    assert _train(["smoke/tiny_qwen3vl_lora_sft_ds3.yaml"], dataset, tiny_model, out) == 0
    _check_run(out, tiny_model, fused=False)  # ZeRO-3 keeps the Conv3d (test_fused_patch_embed_under_zero3_...)
    captured = capfd.readouterr()
    assert "patch embedding: Conv3d as written (ZeRO-3: transformers cannot load the fused one under zero.Init; " \
        "docs/train.md)\n" in captured.out
    assert f"running: FORCE_TORCHRUN=1 NPROC_PER_NODE=1 llamafactory-cli train {out.resolve()}/resolved.yaml\n" \
        in captured.out
    log = captured.out + captured.err
    assert "Initializing 1 distributed tasks" in log and "Detected DeepSpeed ZeRO-3" in log


def test_fused_patch_embed_under_zero3_is_refused_in_one_line(dataset, tiny_model, tmp_path, capfd):
    """transformers 5.6 builds the model on the meta device to find the modules to fuse; under ZeRO-3 the
    vision tower's _from_config enters deepspeed.zero.Init there and fails (seen in CI): asked for both,
    the launch stops before writing anything."""
    out = tmp_path / "ds3-fused"
    assert _train(["smoke/tiny_qwen3vl_lora_sft_ds3.yaml", "--fused-patch-embed", "--dry-run"],
                  dataset, tiny_model, out) == 2
    ds = recipes.RECIPES_ROOT / "deepspeed" / "ds_z3_config.json"
    assert capfd.readouterr().err == (
        f"error: --fused-patch-embed: {ds} is DeepSpeed ZeRO-3, and transformers' fused loading fails under "
        "ZeRO-3 (it builds the model on the meta device inside zero.Init); drop --fused-patch-embed or run "
        "without ZeRO-3\n")
    assert not out.exists()


def test_typo_key_fails_with_one_line(dataset, tiny_model, tmp_path, capfd):
    out = tmp_path / "typo"
    assert _train(["--set", "learning_rat=1.0e-3"], dataset, tiny_model, out) == 2
    assert capfd.readouterr().err == \
        f"error: {SMOKE}: learning_rat: unknown LlamaFactory train key (did you mean learning_rate?)\n"
    assert not out.exists()


def test_cutoff_too_small_fails_before_training(dataset, tiny_model, tmp_path, capfd):
    out = tmp_path / "short"
    budget = token_budget.check({"dataset_dir": str(dataset), "dataset": "full", "cutoff_len": 10 ** 6,
                                 "model_name_or_path": str(tiny_model), "image_max_pixels": 65536})
    assert budget.image == 72  # 128x96 synthetic images are scaled up to 320x224 = 10x7 tokens, + 2 markers
    assert _train(["--set", "cutoff_len=100"], dataset, tiny_model, out) == 2
    err = capfd.readouterr().err
    assert err == (f"error: cutoff_len 100 is too small: {budget.where} needs {budget.need} tokens "
                   f"({budget.image} image + {budget.text} text) with image_max_pixels 65536; "
                   f"raise cutoff_len to at least {budget.need} or lower image_max_pixels\n")
    assert not out.exists()  # nothing written, nothing launched


def test_missing_tiny_model_says_how_to_make_it(dataset, tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--dataset-dir", str(dataset), "--dry-run"]) == 2
    assert capfd.readouterr().err == \
        "error: model models/tiny-qwen3vl not found: run `fracdata tiny-model models/tiny-qwen3vl` first\n"


def test_slurm_sbatch_for_n_nodes(dataset, tiny_model, tmp_path, capfd):
    out, script = tmp_path / "multi", tmp_path / "job.sbatch"
    # Before issue 12 this rendered "effective batch 48" for 3 x 4 GPUs and the test called that correct:
    # the recipe's batch 4 silently became 48. Now 12 GPUs cannot keep 4, so it is refused ...
    assert _train(["qwen3vl_32b_lora_sft_ds3.yaml", "--slurm", "--nodes", "3", "--gpus-per-node", "4",
                   "--out", str(script)], dataset, tiny_model, out) == 2
    assert capfd.readouterr().err.splitlines()[-1] == (
        "error: effective batch 4 cannot be kept on 12 GPUs (3 x 4): each GPU takes at least 1 sample per step, so "
        "the batch must be a multiple of 12; pass --effective-batch 12 (recorded in provenance.json) or use 4 GPUs "
        "(--nodes 1 --gpus-per-node 4)")
    assert not script.exists() and not out.exists()
    # ... and 12 is taken only when asked for, and recorded
    assert _train(["qwen3vl_32b_lora_sft_ds3.yaml", "--slurm", "--nodes", "3", "--gpus-per-node", "4",
                   "--effective-batch", "12", "--out", str(script)], dataset, tiny_model, out) == 0
    assert f"wrote {script} (3 nodes x 4 GPUs, effective batch 12); submit with: sbatch {script}\n" \
        in capfd.readouterr().out
    text = script.read_text()
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0
    assert "#SBATCH --nodes=3\n#SBATCH --ntasks-per-node=1\n#SBATCH --gpus-per-node=4\n" in text
    assert ("# Effective batch = 1 per device x 1 accumulation x 12 GPUs = 12 (--effective-batch 12 (recipe: 4)).\n"
            in text)
    prov = json.loads((out / "provenance.json").read_text())
    assert (prov["launch"]["effective_batch"], prov["launch"]["batch_source"]) == (12, "--effective-batch 12 (recipe: 4)")
    # Execute it with stand-ins for srun/scontrol: each "node" echoes the launch instead of exec'ing it.
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "scontrol").write_text("#!/bin/bash\nprintf 'gpu-a\\ngpu-b\\ngpu-c\\n'\n")
    (bin_dir / "srun").write_text('#!/bin/bash\ncmd="${@: -1}"\nfor i in $(seq 0 $((SLURM_NNODES - 1))); do\n'
                                  '  SLURM_NODEID=$i bash -c "${cmd/exec /echo $i FORCE_TORCHRUN=\\$FORCE_TORCHRUN '
                                  'NNODES=\\$NNODES NODE_RANK=\\$NODE_RANK MASTER_ADDR=\\$MASTER_ADDR '
                                  'MASTER_PORT=\\$MASTER_PORT NPROC_PER_NODE=\\$NPROC_PER_NODE }"\ndone\n')
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ['PATH']}", "SLURM_NNODES": "3",
           "SLURM_JOB_NODELIST": "gpu-[a-c]"}
    env.pop("MASTER_PORT", None)
    run = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    launch = f"{sys.executable} -m llamafactory.cli train {out.resolve()}/resolved.yaml"
    assert run.stdout.splitlines() == [
        f"{i} FORCE_TORCHRUN=1 NNODES=3 NODE_RANK={i} MASTER_ADDR=gpu-a MASTER_PORT=29500 NPROC_PER_NODE=4 {launch}"
        for i in range(3)]
    # the script runs the resolved recipe fracdata validated and wrote
    resolved = yaml.safe_load((out / "resolved.yaml").read_text())
    assert resolved["learning_rate"] == 1.0e-5 and resolved["deepspeed"].endswith("ds_z3_config.json")
    assert (resolved["per_device_train_batch_size"], resolved["gradient_accumulation_steps"]) == (1, 1)


def test_slurm_two_nodes_of_four_gpus_keeps_batch_4_or_refuses(dataset, tiny_model, tmp_path, capfd):
    # the acceptance command: 2 x 4 = 8 GPUs cannot keep the paper's batch 4 -> exit 2, one line, nothing written
    out, script = tmp_path / "2x4", tmp_path / "2x4.sbatch"
    args = ["qwen3vl_32b_lora_sft_ds3.yaml", "--slurm", "--nodes", "2", "--gpus-per-node", "4", "--out", str(script)]
    assert _train(args, dataset, tiny_model, out) == 2
    err = capfd.readouterr().err
    assert err.splitlines()[-1] == (
        "error: effective batch 4 cannot be kept on 8 GPUs (2 x 4): each GPU takes at least 1 sample per step, so "
        "the batch must be a multiple of 8; pass --effective-batch 8 (recorded in provenance.json) or use 4 GPUs "
        "(--gpus-per-node 2)") and err.count("error:") == 1
    assert not script.exists() and not out.exists()
    # the option it names: 2 nodes x 2 GPUs renders a job whose effective batch is 4
    args[5] = "2"
    assert _train(args, dataset, tiny_model, out) == 0
    assert f"wrote {script} (2 nodes x 2 GPUs, effective batch 4)" in capfd.readouterr().out
    text = script.read_text()
    assert ("# Effective batch = 1 per device x 1 accumulation x 4 GPUs = 4 (the recipe (1 per device x 4 "
            "accumulation as written)).\n") in text and "export NPROC_PER_NODE=2\n" in text
    resolved = yaml.safe_load((out / "resolved.yaml").read_text())
    assert (resolved["per_device_train_batch_size"], resolved["gradient_accumulation_steps"]) == (1, 1)


@pytest.mark.parametrize("hardware, split", [
    (["--gpus", "1", "--gpu-memory-gb", "141"], (4, 1, None)),  # fits one H200: 4 x 1, no DeepSpeed
    (["--gpus", "1"], (1, 4, "ds_z3_config.json")),  # card size unknown: as written
    (["--gpus", "4", "--gpu-memory-gb", "80"], (1, 1, "ds_z3_config.json")),
    (["--gpus", "8", "--gpu-memory-gb", "80"], None),
    (["--gpus", "8", "--gpu-memory-gb", "80", "--effective-batch", "8"], (1, 1, "ds_z3_config.json")),
    (["--nodes", "2", "--gpus", "4", "--gpu-memory-gb", "80"], None),
])
def test_dry_run_derives_the_batch_split_from_the_gpus(dataset, tiny_model, tmp_path, capfd, hardware, split):
    # the 32B recipe with the 32B sizes (--model left alone); rows checked on the synthetic dataset
    out = tmp_path / "plan"
    rc = main(["train", "qwen3vl_32b_lora_sft_ds3.yaml", "--dataset-dir", str(dataset), "--output-dir", str(out),
               "--dry-run", *hardware])
    printed = capfd.readouterr()
    if split is None:
        assert rc == 2 and "cannot be kept on 8 GPUs" in printed.err and not out.exists()
        return
    assert rc == 0, printed.err
    resolved = yaml.safe_load((out / "resolved.yaml").read_text())
    got = (resolved["per_device_train_batch_size"], resolved["gradient_accumulation_steps"],
           Path(resolved["deepspeed"]).name if "deepspeed" in resolved else None)
    assert got == split
    gpus = int(hardware[hardware.index("--gpus") + 1]) * (2 if "--nodes" in hardware else 1)
    effective = 8 if "--effective-batch" in hardware else 4
    assert f"effective batch {effective} = {split[0]} per device x {split[1]} accumulation x {gpus} GPU" in printed.out
    launch = json.loads((out / "provenance.json").read_text())["launch"]
    assert (launch["effective_batch"], launch["per_device_train_batch_size"], launch["processes"]) == \
        (effective, split[0], gpus)
    torchrun = split[2] is not None or gpus > 1
    assert (f"would run: {f'FORCE_TORCHRUN=1 NPROC_PER_NODE={gpus} ' if torchrun else ''}llamafactory-cli train "
            f"{out.resolve()}/resolved.yaml") in printed.out


def test_hub_recipe_without_a_dataset_stops(tmp_path, capfd, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for recipe in ("qwen3vl_32b_lora_sft_ds3.yaml", "ablations/no_rare.yaml"):
        assert main(["train", recipe, "--dry-run"]) == 2
        path = recipes.RECIPES_ROOT / recipe
        assert capfd.readouterr().err == (
            f"error: {path}: dataset_dir is not set and the model Qwen/Qwen3-VL-32B-Instruct is a hub id, so there "
            f"is no default dataset: pass --dataset-dir data/processed/<name> (or --set dataset_dir=...)\n")
    assert not (tmp_path / "runs").exists()


def test_token_check_covers_the_validation_rows(dataset, tiny_model, tmp_path, capfd):
    import shutil

    copy = tmp_path / "ds"
    shutil.copytree(dataset, copy)
    val = json.loads((copy / "val.json").read_text())
    val[0]["messages"][1]["content"] = "Features: " + "fatigue striations, " * 40  # only a validation row is long
    (copy / "val.json").write_text(json.dumps(val))
    assert _train(["--dry-run"], copy, tiny_model, tmp_path / "run") == 2
    err = capfd.readouterr().err
    assert err.startswith(f"error: cutoff_len 256 is too small: {copy}/val.json row 1 (id {val[0]['id'][:12]}) needs ")


def _adapter(folder: Path) -> dict:
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


@pytest.mark.slow  # trains to the stopping point on CPU: ~3 min
def test_early_stopping_fires_and_loads_the_best_checkpoint(dataset, tiny_model, tmp_path, capfd):
    """Train on one answer, validate on another: eval_loss rises, patience 2 stops the run early."""
    import torch

    ds = tmp_path / "rising"
    ds.mkdir()
    info = json.loads((dataset / "dataset_info.json").read_text())
    rows = {name: json.loads((dataset / info[name]["file_name"]).read_text())[:24] for name in ("full", "val")}
    # no answer token in common: as the model learns its one training answer, the validation answer's
    # tokens lose probability (here eval_loss dips for ~3 evaluations while the model flattens, then rises)
    answers = {"full": "dimples dimples dimples dimples", "val": "striations, cleavage facets, beach marks"}
    for name, part in rows.items():
        for r in part:
            r["messages"][1]["content"] = answers[name]
            r["images"] = [str(dataset / r["images"][0])]
        (ds / info[name]["file_name"]).write_text(json.dumps(part))
    (ds / "dataset_info.json").write_text(json.dumps({k: info[k] for k in ("full", "val")}))
    out = tmp_path / "early"
    assert _train(["--set", "max_steps=40", "--set", "learning_rate=1.0e-2", "--set", "save_total_limit=3"],
                  ds, tiny_model, out) == 0
    state = json.loads((out / "trainer_state.json").read_text())
    evals = [(h["step"], h["eval_loss"]) for h in state["log_history"] if "eval_loss" in h]
    best_step, best = min(evals, key=lambda e: e[1])
    assert state["global_step"] < 40 and state["global_step"] == evals[-1][0]  # stopped at an evaluation, early
    assert [s for s, _ in evals if s > best_step] == [best_step + 2, best_step + 4]  # patience 2, every 2 steps
    assert all(loss > best for s, loss in evals if s > best_step)
    assert (state["best_metric"], state["best_model_checkpoint"]) == (best, str(out.resolve() / f"checkpoint-{best_step}"))
    # the best checkpoint was loaded at the end: the saved adapter is checkpoint-<best>'s, not the last step's
    final, kept, last = _adapter(out), _adapter(out / f"checkpoint-{best_step}"), _adapter(out / f"checkpoint-{evals[-1][0]}")
    assert all(torch.equal(final[k], kept[k]) for k in final)
    assert not all(torch.equal(final[k], last[k]) for k in final)
    assert json.loads((out / "eval_results.json").read_text())["eval_loss"] == pytest.approx(best, rel=1e-5)
