"""`fracdata train --slurm`: an sbatch script that runs one resolved recipe on N nodes x G GPUs.

Every node runs `llamafactory-cli train resolved.yaml` (the file `fracdata train` validated and
wrote into the run folder), so all nodes train the same recipe; LlamaFactory's launcher turns
NNODES / NODE_RANK / MASTER_ADDR / MASTER_PORT / NPROC_PER_NODE into a torchrun command.
The resolved recipe already carries the plan for N x G GPUs (plan.py): per-device batch x
accumulation x N x G = the recipe's effective batch (or --effective-batch), so the job trains
with the batch the recipe means; a GPU count that cannot keep it was refused before rendering.
Template: fracdata/templates/train.sbatch.j2 (Jinja2; edit partition/account there).
"""

from __future__ import annotations

import shlex
import sys
from importlib import resources
from pathlib import Path

from fracdata.errors import FracdataError


def render_sbatch(recipe: Path, config: dict, nodes: int, gpus_per_node: int, sbatch_name: str = "train.sbatch",
                  cpus_per_task: int | None = None, rendered_by: str | None = None, batch_source: str = "recipe",
                  plan_line: str = "as the recipe says") -> str:
    import jinja2

    if nodes < 1 or gpus_per_node < 1:
        raise FracdataError(f"--slurm needs --nodes >= 1 and --gpus-per-node >= 1 (got {nodes}, {gpus_per_node})")
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["q"] = lambda s: shlex.quote(str(s))
    out = Path(config["output_dir"])
    return env.from_string(resources.files("fracdata").joinpath("templates", "train.sbatch.j2").read_text()).render(
        sbatch_name=sbatch_name,
        rendered_by=rendered_by or f"fracdata train {recipe} --slurm --nodes {nodes} --gpus-per-node {gpus_per_node}",
        batch_source=batch_source, plan_line=plan_line,
        nodes=nodes, gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task or 8 * gpus_per_node,
        job_name=out.name, log_dir=out, workdir=Path.cwd(), bin_dir=Path(sys.executable).parent,
        python=sys.executable, resolved=out / "resolved.yaml",
        per_device=config.get("per_device_train_batch_size", 8), accumulation=config.get("gradient_accumulation_steps", 1),
    )


def write_sbatch(recipe: Path, config: dict, args, plan) -> int:
    from fracdata.cli import artifact_stream

    name = args.out.name if args.out else "train.sbatch"
    hw = plan.hardware
    extra = "".join(f" --{k.replace('_', '-')} {v:g}" if isinstance(v, float) else f" --{k.replace('_', '-')} {v}"
                    for k, v in (("gpu_memory_gb", args.gpu_memory_gb), ("effective_batch", args.effective_batch),
                                 ("per_device_batch", args.per_device_batch)) if v is not None)
    ds = Path(plan.deepspeed).name if plan.deepspeed else "none"
    line = (f"deepspeed {ds}, gradient checkpointing {'on' if plan.gradient_checkpointing else 'off'}"
            + (f", ~{plan.memory_gb_per_gpu:.1f} GB per GPU" if plan.memory_gb_per_gpu is not None
               else " (memory not planned: pass --gpu-memory-gb)"))
    text = render_sbatch(recipe, config, hw.nodes, hw.gpus_per_node, name,
                         rendered_by=f"fracdata train {recipe} --slurm --nodes {hw.nodes} --gpus-per-node "
                                     f"{hw.gpus_per_node}{extra}", batch_source=plan.batch_source, plan_line=line)
    batch = config["per_device_train_batch_size"] * config["gradient_accumulation_steps"] * hw.world
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text)
        print(f"wrote {args.out} ({hw.nodes} nodes x {hw.gpus_per_node} GPUs, effective batch {batch}); "
              f"submit with: sbatch {args.out}")
    else:
        print(f"sbatch script for {hw.nodes} nodes x {hw.gpus_per_node} GPUs (effective batch {batch}) "
              f"follows on stdout", file=sys.stderr)
        artifact_stream(args).write(text)
    return 0
