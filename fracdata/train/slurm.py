"""`fracdata train --slurm`: an sbatch script that runs one resolved recipe on N nodes x G GPUs.

Every node runs `llamafactory-cli train resolved.yaml` (the file `fracdata train` validated and
wrote into the run folder), so all nodes train the same recipe; LlamaFactory's launcher turns
NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT / NPROC_PER_NODE into a torchrun command.
Template: llamafactory_configs/slurm/train.sbatch.j2 (Jinja2; edit partition/account there).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.train.recipes import RECIPES_ROOT

TEMPLATE = RECIPES_ROOT / "slurm" / "train.sbatch.j2"


def render_sbatch(recipe: Path, config: dict, nodes: int, gpus_per_node: int, sbatch_name: str = "train.sbatch",
                  cpus_per_task: int | None = None) -> str:
    import jinja2

    if nodes < 1 or gpus_per_node < 1:
        raise FracdataError(f"--slurm needs --nodes >= 1 and --gpus-per-node >= 1 (got {nodes}, {gpus_per_node})")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["q"] = lambda s: shlex.quote(str(s))
    out = Path(config["output_dir"])
    return env.from_string(TEMPLATE.read_text()).render(
        sbatch_name=sbatch_name,
        rendered_by=f"fracdata train {recipe} --slurm --nodes {nodes} --gpus-per-node {gpus_per_node}",
        nodes=nodes, gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task or 8 * gpus_per_node,
        job_name=out.name, log_dir=out, workdir=Path.cwd(), bin_dir=Path(sys.executable).parent,
        python=sys.executable, resolved=out / "resolved.yaml",
        per_device=config.get("per_device_train_batch_size", 8), accumulation=config.get("gradient_accumulation_steps", 1),
    )


def write_sbatch(recipe: Path, config: dict, args) -> int:
    name = args.out.name if args.out else "train.sbatch"
    text = render_sbatch(recipe, config, args.nodes, args.gpus_per_node, name)
    gpus = args.nodes * args.gpus_per_node
    batch = config.get("per_device_train_batch_size", 8) * config.get("gradient_accumulation_steps", 1) * gpus
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out} ({args.nodes} nodes x {args.gpus_per_node} GPUs, effective batch {batch}); "
              f"submit with: sbatch {args.out}")
    else:
        print(f"sbatch script for {args.nodes} nodes x {args.gpus_per_node} GPUs (effective batch {batch}) "
              f"follows on stdout", file=sys.stderr)
        sys.stdout.write(text)
    return 0
