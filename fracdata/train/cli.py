"""The `fracdata train` command line: arguments, then plan / --slurm / launch (the launch: train/launch.py)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.train.launch import DEFAULT_DATASET_DIR


def add_arguments(parser) -> None:
    from fracdata.train.recipes import SMOKE_RECIPE

    parser.add_argument("recipe", nargs="?", default=str(SMOKE_RECIPE),
                        help="recipe path, or relative to llamafactory_configs/ (default: the CPU smoke recipe)")
    parser.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="override a key (repeatable)")
    parser.add_argument("--dataset-dir", help=f"built dataset folder (default: the recipe's dataset_dir; the smoke "
                        f"and demo recipes use {DEFAULT_DATASET_DIR}, hub-model recipes have none)")
    parser.add_argument("--model", help="model_name_or_path (default: the recipe's; smoke recipe: models/tiny-qwen3vl)")
    parser.add_argument("--output-dir", help="run folder (default: the recipe's output_dir)")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run folder")
    parser.add_argument("--dry-run", action="store_true", help="validate and write the run folder, do not launch")
    parser.add_argument("--plan", action="store_true", help="print the launch plan (memory, DeepSpeed, batch split, "
                        "checkpointing, attention) and stop; needs no dataset")
    parser.add_argument("--json", action="store_true", help="--plan: print the plan as one JSON object on stdout")
    parser.add_argument("--gpus", "--gpus-per-node", dest="gpus", type=int, metavar="N",
                        help="GPUs per node (default: this machine's; --slurm: 8)")
    parser.add_argument("--gpu-memory-gb", type=float, metavar="GB", help="memory of one GPU in GB (default: this "
                        "machine's card; --slurm: not planned unless given)")
    parser.add_argument("--nodes", type=int, help="nodes (default 1, or $NNODES); more than 1 with --slurm, --plan or --dry-run")
    parser.add_argument("--effective-batch", type=int, metavar="B", help="override the effective batch to keep "
                        "(default: the recipe's per_device x accumulation); recorded in provenance.json")
    parser.add_argument("--per-device-batch", type=int, metavar="N", help="pin the per-device batch (default: the "
                        "largest that fits); accumulation follows")
    parser.add_argument("--fused-patch-embed", action=argparse.BooleanOptionalAction, default=None,
                        help="load Qwen3-VL's Conv3d patch embedding as one matmul (transformers' fusion_config; "
                             "default on, 10.7x faster forward+backward in fp32 on CPU, docs/train.md; off under "
                             "DeepSpeed ZeRO-3, where transformers cannot load it); --no-fused-patch-embed keeps the Conv3d")
    parser.add_argument("--slurm", action="store_true", help="render an sbatch script instead of launching")
    parser.add_argument("--out", type=Path, help="--slurm: write the sbatch script here (default: print it on stdout)")


def artifact(args) -> bool:
    """stdout is the artifact (kept clean by fracdata.cli): the sbatch script, or the plan as JSON."""
    return bool((args.slurm and not args.out and not args.plan) or (args.plan and args.json))


def run(args) -> int:
    from fracdata.cli import artifact_stream
    from fracdata.train import launch, plan, recipes

    if args.json and not args.plan:
        raise FracdataError("--json goes with --plan")
    recipe, config, budget = launch.prepare(args)
    p = launch.plan_for(config, args, budget)
    if args.plan:
        if args.json:
            artifact_stream(args).write(json.dumps(p.as_json(), indent=2) + "\n")
        return 0
    config = launch.fuse(recipes.validate(plan.apply(config, p), f"{recipe} (as planned)"), args)
    if args.slurm:
        from fracdata.train.slurm import write_sbatch

        launch.write_run_folder(recipe, config, args, p.as_json())
        return write_sbatch(recipe, config, args, p)
    return launch.start(recipe, config, args, p)
