"""`fracdata train RECIPE`: validate a LlamaFactory recipe, record where the run came from, launch it.

    fracdata train                                   # the CPU smoke recipe on the tiny model
    fracdata train qwen3vl_32b_lora_sft_ds3.yaml --dataset-dir data/processed/real
    fracdata train ablations/no_rare.yaml --set learning_rate=2.0e-5 --dry-run
    fracdata train qwen3vl_32b_lora_sft_ds3.yaml --slurm --nodes 2 --gpus-per-node 8 --out job.sbatch

Before anything starts: overlays and --set are resolved, every key is checked with LlamaFactory's
own parser (recipes.validate), the model and dataset must exist, and every row must fit in
cutoff_len with all its image tokens (token_budget.check). Then the run folder (= output_dir)
gets `resolved.yaml` (what LlamaFactory runs) and `provenance.json` (recipe, git commit, dataset
card hash, package versions), and `llamafactory-cli train resolved.yaml` runs, under torchrun
(FORCE_TORCHRUN=1, NPROC_PER_NODE) when the recipe uses DeepSpeed.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.provenance import describe, git_state
from fracdata.records import sha256_bytes, sha256_file

DEFAULT_DATASET_DIR = "data/processed/synthetic"
TINY_MODEL = "models/tiny-qwen3vl"
OURS = ("resolved.yaml", "provenance.json")  # files fracdata writes into the run folder
PACKAGES = ("fracdata", "llamafactory", "transformers", "tokenizers", "torch", "peft", "trl", "accelerate",
            "datasets", "deepspeed")


def add_arguments(parser) -> None:
    from fracdata.train.recipes import SMOKE_RECIPE

    parser.add_argument("recipe", nargs="?", default=str(SMOKE_RECIPE),
                        help="recipe path, or relative to llamafactory_configs/ (default: the CPU smoke recipe)")
    parser.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="override a key (repeatable)")
    parser.add_argument("--dataset-dir", help=f"built dataset folder (default: the recipe's, {DEFAULT_DATASET_DIR})")
    parser.add_argument("--model", help="model_name_or_path (default: the recipe's; smoke recipe: models/tiny-qwen3vl)")
    parser.add_argument("--output-dir", help="run folder (default: the recipe's output_dir)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run folder")
    parser.add_argument("--dry-run", action="store_true", help="validate and write the run folder, do not launch")
    parser.add_argument("--slurm", action="store_true", help="render an sbatch script instead of launching")
    parser.add_argument("--nodes", type=int, default=1, help="--slurm: number of nodes (default 1)")
    parser.add_argument("--gpus-per-node", type=int, default=8, help="--slurm: GPUs per node (default 8)")
    parser.add_argument("--out", type=Path, help="--slurm: write the sbatch script here (default: print it)")


def prepare(args) -> tuple[Path, dict]:
    """Resolve, validate and check a recipe; returns (recipe path, typed config with absolute paths)."""
    from fracdata.train import recipes, token_budget

    overrides = {"dataset_dir": args.dataset_dir, "model_name_or_path": args.model, "output_dir": args.output_dir}
    path, config = recipes.resolve(args.recipe, args.sets, overrides)
    if recipes.kind(config) != "train":
        raise FracdataError(f"{path}: not a training recipe (kind {recipes.kind(config)}); "
                            f"run it with llamafactory-cli export/api")
    config = recipes.validate(config, str(path))
    for key in ("output_dir", "dataset_dir"):
        if key not in config:
            raise FracdataError(f"{path}: {key} is not set (pass --{key.replace('_', '-')})")
    config["dataset_dir"] = str(Path(config["dataset_dir"]).resolve())
    config["output_dir"] = str(Path(config["output_dir"]).resolve())
    config["model_name_or_path"] = _model(str(config.get("model_name_or_path", "")), path)
    budget = token_budget.check(config)
    how = "tokenizer" if budget.exact else "UTF-8 bytes, an upper bound"
    print(f"checked {budget.rows:,} rows: longest needs {budget.need} tokens ({budget.image} image + "
          f"{budget.text} text, {how}) <= cutoff_len {config['cutoff_len']}")
    return path, config


def _model(name: str, recipe: Path) -> str:
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise FracdataError(f"model {name}: folder has no config.json")
        return str(local.resolve())
    if name.rstrip("/") == TINY_MODEL or "tiny" in Path(name).name:
        raise FracdataError(f"model {name} not found: run `fracdata tiny-model {name}` first")
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise FracdataError(f"model {name} ({recipe}) is neither a local folder nor a hub id (org/name)")
    print(f"model {name}: not a local folder, so a Hugging Face hub id (downloaded or taken from the HF cache)")
    return name


def _checkpoint(output_dir: Path, resume: bool) -> str | None:
    """The checkpoint to resume from, or None for a fresh run; refuses to train over an earlier run."""
    from transformers.trainer_utils import get_last_checkpoint

    if not output_dir.is_dir():
        if resume:
            raise FracdataError(f"--resume: {output_dir} does not exist")
        return None
    last = get_last_checkpoint(str(output_dir))
    if resume:
        if last is None:
            raise FracdataError(f"--resume: {output_dir} has no checkpoint-* folder to resume from")
        return last
    others = sorted(p.name for p in output_dir.iterdir() if p.name not in OURS)
    if others:
        raise FracdataError(f"{output_dir} already holds a run ({', '.join(others[:3])}{', ...' if len(others) > 3 else ''}): "
                            f"pass --resume to continue it, or --output-dir for a new run")
    return None


def _sha256(path: Path) -> str | None:
    return sha256_file(path) if path.is_file() else None


def provenance(recipe: Path, config: dict, args, resolved_text: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    ds = Path(config["dataset_dir"])
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "recipe": str(recipe.resolve()), "sets": args.sets or [], "command": "fracdata " + shlex.join(sys.argv[1:]),
        "resolved_sha256": sha256_bytes(resolved_text.encode()),
        "git": git_state(),
        "dataset": {"dir": str(ds), "names": config.get("dataset"), "card_sha256": _sha256(ds / "README.md"),
                    "dataset_info_sha256": _sha256(ds / "dataset_info.json")},
        "model": config["model_name_or_path"],
        "packages": {name: ver(name) for name in PACKAGES}, "python": sys.version.split()[0],
    }


def launch_env(config: dict) -> dict:
    """Environment for llamafactory-cli: torchrun settings when DeepSpeed is on, torchrun on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if config.get("deepspeed"):
        env["FORCE_TORCHRUN"] = "1"  # plain `llamafactory-cli train` refuses DeepSpeed without it
        if "NPROC_PER_NODE" not in env:
            import torch

            # FORCE_TORCHRUN alone on a CPU machine starts torchrun with 0 processes
            env["NPROC_PER_NODE"] = str(max(torch.cuda.device_count(), 1))
    return env


def write_run_folder(recipe: Path, config: dict, args) -> Path:
    from fracdata.train.recipes import render, sections

    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    text = render(config, sections(recipe), f"# Resolved from {recipe} by `fracdata train`; provenance.json beside it\n")
    (out / "resolved.yaml").write_text(text)
    prov = provenance(recipe, config, args, text)
    (out / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    card = prov["dataset"]["card_sha256"]
    print(f"wrote {out}/resolved.yaml ({len(config)} keys) and provenance.json "
          f"(git {describe(prov['git'], short=True)}, "
          f"dataset card {card[:12] if card else 'none: no README.md in ' + prov['dataset']['dir']})")
    return out / "resolved.yaml"


def run(args) -> int:
    recipe, config = prepare(args)
    if args.slurm:
        from fracdata.train.slurm import write_sbatch

        write_run_folder(recipe, config, args)
        return write_sbatch(recipe, config, args)
    resume = _checkpoint(Path(config["output_dir"]), args.resume)
    if resume:
        config["resume_from_checkpoint"] = resume
        print(f"resuming from {resume}")
    resolved = write_run_folder(recipe, config, args)
    env = launch_env(config)
    nproc = int(env.get("NPROC_PER_NODE", 1)) * int(env.get("NNODES", 1)) if config.get("deepspeed") else 1
    batch = config.get("per_device_train_batch_size", 8) * config.get("gradient_accumulation_steps", 1)
    print(f"effective batch {batch * nproc} = {config.get('per_device_train_batch_size', 8)} per device x "
          f"{config.get('gradient_accumulation_steps', 1)} accumulation x {nproc} process(es)")
    prefix = f"FORCE_TORCHRUN=1 NPROC_PER_NODE={env['NPROC_PER_NODE']} " if config.get("deepspeed") else ""
    cmd = [sys.executable, "-m", "llamafactory.cli", "train", str(resolved)]
    print(f"{'would run' if args.dry_run else 'running'}: {prefix}llamafactory-cli train {resolved}", flush=True)
    if args.dry_run:
        return 0
    rc = subprocess.run(cmd, env=env).returncode
    if rc != 0:
        raise FracdataError(f"llamafactory-cli train exited with status {rc} (its log is above; config: {resolved})")
    _summary(Path(config["output_dir"]))
    return 0


def _summary(out: Path) -> None:
    """What training wrote: adapter, checkpoints, final losses (trainer_state.json)."""
    files = sorted(p.name for p in out.iterdir() if p.is_file())
    ckpts = sorted(p.name for p in out.glob("checkpoint-*"))
    msg = f"wrote {out}/: {len(files)} files ({', '.join(f for f in files if f.startswith(('adapter', 'model')))})"
    state = out / "trainer_state.json"
    if state.is_file():
        s = json.loads(state.read_text())
        evals = [h["eval_loss"] for h in s.get("log_history", []) if "eval_loss" in h]
        msg += (f", {s.get('global_step')} steps, {len(evals)} evaluations, best eval_loss "
                f"{s.get('best_metric')} at {s.get('best_model_checkpoint') or '-'}")
    print(msg + f", {len(ckpts)} checkpoint folders")
