"""`fracdata train RECIPE`: validate a LlamaFactory recipe, record where the run came from, launch it.

    fracdata train                                   # the CPU smoke recipe on the tiny model
    fracdata train qwen3vl_32b_lora_sft_ds3.yaml --dataset-dir data/processed/real
    fracdata train qwen3vl_32b_lora_sft_ds3.yaml --plan --gpus 8 --gpu-memory-gb 80 --effective-batch 8
    fracdata train ablations/no_rare.yaml --dataset-dir D --set learning_rate=2.0e-5 --dry-run
    fracdata train qwen3vl_32b_lora_sft_ds3.yaml --dataset-dir D --slurm --nodes 1 --gpus-per-node 4 --out job.sbatch

Before anything starts: overlays and --set are resolved, every key is checked with LlamaFactory's
own parser (recipes.validate), the model and dataset must exist, and every row must fit in
cutoff_len with all its image tokens (token_budget.check). Then the launch is planned from the
hardware (plan.py: DeepSpeed or not, per-device batch x accumulation keeping the effective
batch, gradient checkpointing, attention) and printed. The run folder (= output_dir) gets
`resolved.yaml` (what LlamaFactory runs, plan applied) and `provenance.json` (recipe, git
commit, dataset card hash, package versions, the plan and any batch override), and
`llamafactory-cli train resolved.yaml` runs, under torchrun (FORCE_TORCHRUN=1, NPROC_PER_NODE)
with DeepSpeed or more than one GPU.

The command line is train/cli.py; the launch (checks, plan, run folder, llamafactory-cli) train/launch.py.
"""

from fracdata.train.cli import add_arguments, artifact, run

__all__ = ["add_arguments", "artifact", "run"]
