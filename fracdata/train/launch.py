"""The launch behind `fracdata train`: resolve and check a recipe, plan it for the hardware, write the
run folder (resolved.yaml + provenance.json) and run `llamafactory-cli train` (torchrun when needed).

The command line (arguments, --plan/--slurm/--dry-run branching) is train/cli.py.
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
from fracdata.provenance import describe, git_state, host
from fracdata.records import sha256_bytes, sha256_file

DEFAULT_DATASET_DIR = "data/processed/synthetic"  # the smoke and demo recipes' own dataset_dir
TINY_MODEL = "models/tiny-qwen3vl"
VIEW = "model-view"  # the model as LlamaFactory loads it, when the fused patch embedding needs a view (fusion.py)
OURS = ("resolved.yaml", "provenance.json", VIEW)  # what fracdata writes into the run folder
PACKAGES = ("fracdata", "llamafactory", "transformers", "tokenizers", "torch", "peft", "trl", "accelerate",
            "datasets", "deepspeed")


def prepare(args) -> tuple[Path, dict, object]:
    """Resolve, validate and check a recipe: (recipe path, typed config with absolute paths, token budget).

    With --plan and no dataset_dir the rows are not read (budget None): the plan bounds a sample by cutoff_len.
    """
    from fracdata.train import recipes, token_budget

    overrides = {"dataset_dir": args.dataset_dir, "model_name_or_path": args.model, "output_dir": args.output_dir}
    path, config = recipes.resolve(args.recipe, args.sets, overrides)
    if recipes.kind(config) != "train":
        raise FracdataError(f"{path}: not a training recipe (kind {recipes.kind(config)}); "
                            f"run it with llamafactory-cli export/api")
    config = recipes.validate(config, str(path))
    if "output_dir" not in config:
        raise FracdataError(f"{path}: output_dir is not set (pass --output-dir)")
    model = _model(str(config.get("model_name_or_path", "")), path)
    config["model_name_or_path"] = model
    config["output_dir"] = str(Path(config["output_dir"]).resolve())
    if "dataset_dir" not in config and not args.plan:
        hub = "" if Path(model).is_dir() else f" and the model {model} is a hub id, so there is no default dataset"
        raise FracdataError(f"{path}: dataset_dir is not set{hub}: pass --dataset-dir data/processed/<name> "
                            f"(or --set dataset_dir=...)")
    if "dataset_dir" not in config:
        print(f"no dataset_dir: rows not checked; a sample is bounded by cutoff_len {config.get('cutoff_len', 2048)}")
        return path, config, None
    config["dataset_dir"] = str(Path(config["dataset_dir"]).resolve())
    budget = token_budget.check(config)
    how = "tokenizer" if budget.exact else "UTF-8 bytes, an upper bound"
    print(f"checked {budget.rows:,} rows: longest needs {budget.need} tokens ({budget.image} image + "
          f"{budget.text} text, {how}) <= cutoff_len {config['cutoff_len']}")
    return path, config, budget


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
        "patch_embed": getattr(args, "patch_embed", None),  # fused or not, and what LlamaFactory loaded (fuse())
        "packages": {name: ver(name) for name in PACKAGES}, "python": sys.version.split()[0],
        "host": host(),  # CPU model, thread settings, numerical library versions: what moves CPU floats
    }


def hardware(args):
    """The hardware to plan for: this machine's GPUs, or what --nodes/--gpus/--gpu-memory-gb describe."""
    from fracdata.train.plan import Hardware

    import torch

    local = torch.cuda.device_count() if torch.cuda.is_available() else 0
    asked = args.gpus is not None or args.gpu_memory_gb is not None or args.nodes is not None
    nodes = args.nodes if args.nodes is not None else 1 if args.slurm else int(os.environ.get("NNODES", 1))
    if args.gpus is not None:
        gpus = args.gpus
    elif args.slurm:
        gpus = 8
    else:
        gpus = int(os.environ.get("NPROC_PER_NODE", local)) if local else 0
    if nodes < 1 or gpus < 0 or (args.slurm and gpus < 1):
        raise FracdataError(f"--nodes {nodes} --gpus {gpus}: need at least 1 node and 1 GPU per node")
    memory = args.gpu_memory_gb
    if memory is None and local and not args.slurm:
        memory = torch.cuda.get_device_properties(0).total_memory / 1e9
    if not (args.plan or args.dry_run or args.slurm):  # a real launch runs on this machine
        if gpus > local:
            raise FracdataError(f"--gpus {gpus}: this machine has {local} GPU(s); --gpus/--nodes/--gpu-memory-gb "
                                f"describe other hardware only with --plan, --dry-run or --slurm")
        if args.nodes is not None and args.nodes > 1:
            raise FracdataError(f"--nodes {args.nodes}: a multi-node run is a SLURM job (add --slurm)")
    return Hardware(nodes, gpus, memory, asked)


def gpu_name(hw) -> str | None:
    """This machine's card name (its peak differs by form: fracdata.train.gpus), unless asked for other hardware."""
    import torch

    return torch.cuda.get_device_name(0) if not hw.asked and hw.gpus_per_node and torch.cuda.is_available() else None


def plan_for(config: dict, args, budget):
    """(plan, model sizes or None) for this config on this hardware; prints the plan."""
    from fracdata.train import plan, projection, recipes, sizes

    hw = hardware(args)
    s, why = None, ""
    model_config = sizes.load_config(config["model_name_or_path"])
    if model_config is None:
        why = f"no config.json for {config['model_name_or_path']} here"
    else:
        try:
            s = sizes.sizes(model_config, int(config.get("lora_rank", 8)))
        except FracdataError as e:
            why = str(e)
    if budget is not None:  # LlamaFactory pads each batch to its longest row, rounded up to a multiple of 8
        tokens, note = -(-budget.need // 8) * 8, f"the longest row, {budget.need}, rounded up to a multiple of 8"
    else:
        tokens, note = int(config.get("cutoff_len", 2048)), "cutoff_len, an upper bound: no dataset read"
    p = plan.make_plan(config, hw, s, tokens, note, plan.effective_batch(config, args.effective_batch),
                       args.per_device_batch, set(recipes.parse_sets(args.sets)), slurm=args.slurm,
                       recipes_root=recipes.RECIPES_ROOT, strict=not args.plan)
    p.projection = projection.project(p, s, config, budget, gpu_name(hw))
    print(plan.describe(p, s, config["model_name_or_path"]) + (f"\n  ({why})" if why else ""), flush=True)
    return p


def fuse(config: dict, args) -> dict:
    """Point LlamaFactory at a model whose config.json asks for the fused patch embedding (or not),
    as --fused-patch-embed says (default: on, except under ZeRO-3; fracdata/train/fusion.py); recorded in provenance."""
    from fracdata.train import fusion

    name, fused, zero3 = config["model_name_or_path"], args.fused_patch_embed, zero_stage(config) == 3
    # transformers 5.6 finds the modules to fuse by building the model on the meta device; under ZeRO-3
    # Qwen3-VL's vision tower is built through _from_config, which enters deepspeed.zero.Init there and
    # fails ("Cannot copy out of meta tensor"): so ZeRO-3 runs keep the Conv3d, and asking for both is refused
    if fused and zero3:
        raise FracdataError(f"--fused-patch-embed: {config.get('deepspeed')} is DeepSpeed ZeRO-3, and transformers' "
                            "fused loading fails under ZeRO-3 (it builds the model on the meta device inside "
                            "zero.Init); drop --fused-patch-embed or run without ZeRO-3")
    if fused is None:
        fused = not zero3
        if zero3:
            print("patch embedding: Conv3d as written (ZeRO-3: transformers cannot load the fused one under "
                  "zero.Init; docs/train.md)")
    folder = Path(name) if Path(name).is_dir() else None
    if folder is None:
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(name, local_files_only=True))
        except Exception:  # noqa: BLE001 - any miss means "not in the local cache"
            folder = None
    if folder is None:
        args.patch_embed = {"fused": None, "model": name,
                            "why": "a hub id not in the local cache: loaded as its config.json says"}
        print(f"patch embedding: {name} is not on this machine, so LlamaFactory loads it as its config.json says")
        return config
    view = fusion.model_view(folder, Path(config["output_dir"]) / VIEW, fused)
    args.patch_embed = {"fused": fused, "model": name, "loaded_from": str(view)}
    if view != folder.resolve():
        config["model_name_or_path"] = str(view)
        print(f"patch embedding: {'fused (one matmul)' if fused else 'Conv3d as written'}; LlamaFactory loads "
              f"{view} (links to {folder}, config.json {'with' if fused else 'without'} fusion_config)")
    else:
        print(f"patch embedding: {'fused (one matmul)' if fused else 'Conv3d as written'}, as {folder}/config.json says")
    return config


def zero_stage(config: dict) -> int | None:
    """The recipe's DeepSpeed ZeRO stage (recipes.validate has checked the file), or None without DeepSpeed."""
    if not config.get("deepspeed"):
        return None
    return json.loads(Path(str(config["deepspeed"])).read_text())["zero_optimization"]["stage"]


def unview(out: Path, args) -> None:
    """Adapters name the base model they were trained on: the model, not the run folder's view."""
    info = getattr(args, "patch_embed", None) or {}
    view = info.get("loaded_from")
    if not view or view == info.get("model"):
        return
    for cfg in [out / "adapter_config.json", *out.glob("checkpoint-*/adapter_config.json")]:
        if cfg.is_file():
            data = json.loads(cfg.read_text())
            if data.get("base_model_name_or_path") == view:
                data["base_model_name_or_path"] = info["model"]
                cfg.write_text(json.dumps(data, indent=2) + "\n")


def launch_env(config: dict, processes_per_node: int = 1, world: int = 1) -> dict:
    """Environment for llamafactory-cli: torchrun with DeepSpeed or more than one process, torchrun on PATH."""
    env = dict(os.environ)
    env["PATH"] = str(Path(sys.executable).parent) + os.pathsep + env.get("PATH", "")
    if config.get("deepspeed") or world > 1:
        env["FORCE_TORCHRUN"] = "1"  # plain `llamafactory-cli train` refuses DeepSpeed without it
        # FORCE_TORCHRUN alone on a CPU machine starts torchrun with 0 processes
        env["NPROC_PER_NODE"] = str(max(processes_per_node, 1))
    return env


def write_run_folder(recipe: Path, config: dict, args, launch: dict | None = None) -> Path:
    from fracdata.train.recipes import render, sections

    out = Path(config["output_dir"])
    out.mkdir(parents=True, exist_ok=True)
    text = render(config, sections(recipe), f"# Resolved from {recipe} by `fracdata train`; provenance.json beside it\n")
    (out / "resolved.yaml").write_text(text)
    prov = provenance(recipe, config, args, text)
    if launch is not None:
        prov["launch"] = launch  # the plan: hardware, batch (and any --effective-batch override), DeepSpeed, ...
    (out / "provenance.json").write_text(json.dumps(prov, indent=2) + "\n")
    card = prov["dataset"]["card_sha256"]
    print(f"wrote {out}/resolved.yaml ({len(config)} keys) and provenance.json "
          f"(git {describe(prov['git'], short=True)}, "
          f"dataset card {card[:12] if card else 'none: no README.md in ' + prov['dataset']['dir']})")
    return out / "resolved.yaml"


def start(recipe: Path, config: dict, args, p) -> int:
    """Resume or refuse an earlier run, write the run folder, run llamafactory-cli train (unless --dry-run)."""
    resume = _checkpoint(Path(config["output_dir"]), args.resume)
    if resume:
        config["resume_from_checkpoint"] = resume
        print(f"resuming from {resume}")
    resolved = write_run_folder(recipe, config, args, p.as_json())
    env = launch_env(config, p.hardware.gpus_per_node, p.hardware.world)
    torchrun = bool(config.get("deepspeed")) or p.hardware.world > 1
    prefix = f"FORCE_TORCHRUN=1 NPROC_PER_NODE={env['NPROC_PER_NODE']} " if torchrun else ""
    cmd = [sys.executable, "-m", "llamafactory.cli", "train", str(resolved)]
    print(f"{'would run' if args.dry_run else 'running'}: {prefix}llamafactory-cli train {resolved}", flush=True)
    if args.dry_run:
        return 0
    rc = subprocess.run(cmd, env=env).returncode
    if rc != 0:
        raise FracdataError(f"llamafactory-cli train exited with status {rc} (its log is above; config: {resolved})")
    unview(Path(config["output_dir"]), args)
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
