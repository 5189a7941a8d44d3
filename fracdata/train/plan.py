"""The launch plan: DeepSpeed or not, per-device batch x accumulation, checkpointing, attention.

`fracdata train` plans every launch from the hardware (this machine's GPUs, or `--nodes/--gpus/
--gpu-memory-gb` for hardware one does not have) and prints the plan in its first lines:

1. Effective batch B: `--effective-batch`, else the recipe's per_device x accumulation (the batch
   it means on one GPU; the paper recipe's 4, from the simulated rebuttal: docs/study.md). On W = nodes x GPUs each GPU takes B / W samples per
   step, so B must be a multiple of W; otherwise the launch is refused, naming the options.
   `--plan` alone still plans, at the smallest batch W can keep, and says the launch would be refused.
2. Memory per GPU (estimate, GB = 1e9 bytes), from the model's config values (sizes.py):
   frozen weights (2 bytes each in bf16), LoRA and optimizer state (16 bytes per trainable
   parameter: fp32 weight, gradient, Adam m and v), activations per sample at T tokens (each layer
   saves `act_per_token_layer` elements per token; with gradient checkpointing only the layer
   inputs, T x hidden, plus one layer being recomputed), and ~16 bytes per logit (T x vocab: bf16
   logits, the fp32 copy the loss takes, fp32 log-softmax and the gradients). Calibration: at 8
   and 16 layers (4 x 719 tokens, checkpointing) it gives 20.5 and 28.8 GB against peaks measured
   on an H200 of 20.7 and 28 thousand MiB = 21.7 and 29.4 GB: 1.2 and 0.6 GB under, inside the
   reserve below (docs/train.md).
   Usable = card - 10% - 2 GB (CUDA context, NCCL/cuBLAS workspaces, allocator fragmentation).
3. Strategy, first that fits at per-device 1 with checkpointing: no DeepSpeed (plain, or DDP over
   W > 1 GPUs: each holds the frozen weights, only the LoRA gradients are all-reduced); ZeRO-3
   across W > 1 GPUs (weights and optimizer state / W, plus a gathered layer and its prefetch);
   ZeRO-3 with parameters and optimizer offloaded to CPU. On one GPU ZeRO-3 shards nothing and
   measured 1.8x slower than a plain launch (shared/docs/gpu.md), so it is never planned there.
4. Per-device batch: the largest divisor of B / W that fits (bigger matmuls, fewer steps);
   accumulation = B / (W x per-device). Checkpointing off when that batch fits without it
   (recompute costs a third more FLOPs). Attention: sdpa (PyTorch's fused kernels, no extra
   package). A key given with `--set` (deepspeed, disable_gradient_checkpointing, flash_attn) is kept.
Without a GPU or a known card size (a CPU run, `--slurm` without `--gpu-memory-gb`) memory is not
planned: DeepSpeed and checkpointing stay as the recipe says and the per-device batch never
exceeds the recipe's.
5. Projected wall time (projection.py): at a stated MFU band of the card's dense bf16 peak, and
   for CPU offload the host-link floor, printed with every plan (or why there is none).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.train.sizes import Sizes

GB = 1e9
RESERVE_FRACTION, RESERVE_GB = 0.10, 2.0
LORA_STATE_BYTES = 16  # fp32 weight 4 + fp32 gradient 4 + Adam m 4 + v 4
LOGIT_BYTES = 16
ZERO3, OFFLOAD = "ds_z3_config.json", "ds_z3_offload_config.json"


@dataclass
class Hardware:
    nodes: int = 1
    gpus_per_node: int = 0  # 0: no GPU, one CPU process
    gpu_memory_gb: float | None = None
    asked: bool = False  # described by --nodes/--gpus/--gpu-memory-gb rather than detected

    @property
    def world(self) -> int:
        return self.nodes * max(self.gpus_per_node, 1)

    def describe(self) -> str:
        if self.gpus_per_node == 0:
            return "CPU (no GPU): 1 process"
        mem = f" of {self.gpu_memory_gb:g} GB" if self.gpu_memory_gb else " (memory unknown)"
        return f"{self.nodes} node(s) x {self.gpus_per_node} GPU(s){mem}"


@dataclass
class Plan:
    hardware: Hardware
    effective_batch: int
    batch_source: str  # "recipe (1 per device x 4 accumulation)" or "--effective-batch 8"
    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    deepspeed: str | None
    gradient_checkpointing: bool
    attention: str | None  # flash_attn value to set, None: leave the recipe's
    memory_gb_per_gpu: float | None
    usable_gb: float | None = None
    tokens_per_sample: int | None = None
    memory: dict = field(default_factory=dict)
    reasons: list[str] = field(default_factory=list)
    refused: str | None = None  # why a launch of the asked batch on this hardware is refused (--plan only)
    projection: dict = field(default_factory=dict)  # projected wall time at an MFU band (projection.py)

    def as_json(self) -> dict:
        d = asdict(self)
        d["hardware"] = {k: v for k, v in d["hardware"].items()}
        d["processes"] = self.hardware.world
        return d


def effective_batch(config: dict, override: int | None) -> tuple[int, str]:
    pd, ga = int(config.get("per_device_train_batch_size", 8)), int(config.get("gradient_accumulation_steps", 1))
    if override is not None:
        if override < 1:
            raise FracdataError(f"--effective-batch {override}: must be >= 1")
        return override, f"--effective-batch {override} (recipe: {pd * ga})"
    return pd * ga, f"the recipe ({pd} per device x {ga} accumulation as written)"


def _batch_error(b: int, hw: Hardware, slurm: bool) -> FracdataError:
    w = hw.world
    fewer = max(d for d in range(1, w + 1) if b % d == 0)
    if slurm or hw.nodes > 1:
        gpus = f"--gpus-per-node {fewer // hw.nodes}" if fewer % hw.nodes == 0 else f"--nodes 1 --gpus-per-node {fewer}"
    else:
        gpus = f"--gpus {fewer}"
    return FracdataError(
        f"effective batch {b} cannot be kept on {w} GPUs ({hw.nodes} x {hw.gpus_per_node}): each GPU takes at least "
        f"1 sample per step, so the batch must be a multiple of {w}; pass --effective-batch {-(-b // w) * w} "
        f"(recorded in provenance.json) or use {fewer} GPUs ({gpus})")


def _divisors(n: int) -> list[int]:
    return [d for d in range(n, 0, -1) if n % d == 0]


def memory(s: Sizes, config: dict, strategy: str, per_device: int, tokens: int, checkpointing: bool,
           world: int) -> dict:
    """Estimated GB per GPU: weights, trainable state, activations, total (see the module docstring)."""
    bpw = 2 if (config.get("bf16") or config.get("fp16")) else 4
    full = config.get("finetuning_type", "lora") == "full"
    trainable = s.total if full else s.lora
    frozen = 0 if full else s.total
    live = 2 * s.per_layer * bpw  # ZeRO-3: the layer being computed and the one prefetched, gathered
    if strategy == "none":
        weights, state = frozen * bpw, trainable * LORA_STATE_BYTES
    elif strategy == "zero3":
        weights, state = frozen * bpw / world + live, trainable * (LORA_STATE_BYTES + bpw) / world
    else:  # zero3 with parameters and optimizer state offloaded to CPU
        weights, state = live, 0.0
    t = tokens
    saved = s.layers * t * (s.hidden if checkpointing else s.act_per_token_layer) * bpw
    recompute = t * s.act_per_token_layer * bpw if checkpointing else 0
    logits = t * s.vocab * LOGIT_BYTES
    per_sample = saved + recompute + logits
    out = {"weights": weights / GB, "trainable_state": state / GB, "activations": per_device * per_sample / GB}
    out["total"] = sum(out.values())
    return out


def make_plan(config: dict, hw: Hardware, s: Sizes | None, tokens: int | None, tokens_note: str,
              effective: tuple[int, str], per_device: int | None = None, pinned: set[str] = frozenset(),
              slurm: bool = False, recipes_root: Path | None = None, strict: bool = True) -> Plan:
    """The launch for this config on this hardware; FracdataError (one line) when the batch cannot be kept.

    strict=False (`--plan`): a batch W cannot keep is planned at the next multiple of W instead, and
    the plan's `refused` says why a launch of the asked batch stops."""
    b, source = effective
    w = hw.world
    refused = None
    if b < w or b % w:
        if strict:
            raise _batch_error(b, hw, slurm)
        refused = str(_batch_error(b, hw, slurm))
        b, source = -(-b // w) * w, f"the smallest batch {w} GPUs keep (asked: {b} from {source})"
    q = b // w  # samples per GPU per optimizer step
    if per_device is not None and (per_device < 1 or q % per_device):
        raise FracdataError(f"--per-device-batch {per_device} does not divide the {q} samples each GPU takes per step "
                            f"(effective batch {b} / {w} GPU(s)): use {', '.join(map(str, reversed(_divisors(q))))}")
    recipe_ds = config.get("deepspeed")
    recipe_gc = not config.get("disable_gradient_checkpointing", False)
    reasons = [f"batch: effective {b} from {source}"]
    known = hw.gpus_per_node > 0 and hw.gpu_memory_gb and s is not None and tokens
    if not known:
        cap = int(config.get("per_device_train_batch_size", 8))
        pd = per_device or next(d for d in _divisors(q) if d <= max(cap, 1))
        why = ("no GPU" if hw.gpus_per_node == 0 else "card memory unknown (pass --gpu-memory-gb)" if not hw.gpu_memory_gb
               else "model size unknown to the planner" if s is None else "tokens per sample unknown")
        reasons.append(f"memory not planned ({why}): DeepSpeed and checkpointing as the recipe says, "
                       f"per-device batch at most the recipe's {cap}")
        return Plan(hw, b, source, pd, q // pd, recipe_ds, recipe_gc, None, None, reasons=reasons, refused=refused)

    usable = hw.gpu_memory_gb * (1 - RESERVE_FRACTION) - RESERVE_GB
    if recipes_root is None:
        from fracdata.train.recipes import RECIPES_ROOT as recipes_root
    root = Path(recipes_root)
    files = {"none": None, "zero3": str(root / "deepspeed" / ZERO3), "zero3_offload": str(root / "deepspeed" / OFFLOAD)}
    if "deepspeed" in pinned:
        strategies = ["none" if not recipe_ds else "zero3_offload" if "offload" in str(recipe_ds) else "zero3"]
        files[strategies[0]] = recipe_ds or None
    else:
        strategies = ["none"] + (["zero3"] if w > 1 else []) + ["zero3_offload"]
    sizes_pd = [per_device] if per_device else _divisors(q)
    gc_pinned = "disable_gradient_checkpointing" in pinned
    gc_first = not config["disable_gradient_checkpointing"] if gc_pinned else True
    need = {st: memory(s, config, st, sizes_pd[-1], tokens, gc_first, w)["total"] for st in strategies}
    choice = next(((st, pd) for st in strategies for pd in sizes_pd
                   if memory(s, config, st, pd, tokens, gc_first, w)["total"] <= usable), None)
    if choice is None:
        raise FracdataError(f"does not fit on {hw.describe()}: even {strategies[-1]} at {sizes_pd[-1]} per device "
                            f"needs {need[strategies[-1]]:.1f} GB per GPU of {usable:.1f} GB usable; use more or "
                            f"larger GPUs, or lower cutoff_len / image_max_pixels")
    strategy, pd = choice
    with_gc = memory(s, config, strategy, pd, tokens, True, w)
    without = memory(s, config, strategy, pd, tokens, False, w)
    if "deepspeed" in pinned:
        reasons.insert(0, f"deepspeed: {Path(recipe_ds).name if recipe_ds else 'none'} (set with --set)")
    elif strategy == "none":
        reasons.insert(0, "deepspeed: none: the model fits one GPU" + (
            f"; DDP over {w} GPUs, each holds the frozen weights and only LoRA gradients are all-reduced" if w > 1
            else " (ZeRO-3 on one process shards nothing and measured 1.8x slower)"))
    else:
        over = f"unsharded it needs {need['none']:.1f} GB" + (
            f", ZeRO-3 over {w} GPUs {need['zero3']:.1f} GB" if strategy == "zero3_offload" and w > 1 else "")
        what = f"ZeRO-3 across {w} GPUs" if strategy == "zero3" else \
            "ZeRO-3 with parameters and optimizer state offloaded to CPU (host RAM >= the weights)"
        reasons.insert(0, f"deepspeed: {what}: {over} > {usable:.1f} GB usable")
    if gc_pinned:
        gc = gc_first
        reasons.append(f"gradient checkpointing {'on' if gc else 'off'}: set with --set")
    else:
        gc = without["total"] > usable
        reasons.append(f"gradient checkpointing {'on' if gc else 'off'}: without it {without['total']:.1f} GB "
                       f"{'>' if gc else '<='} {usable:.1f} GB usable"
                       + (" (recompute costs a third more FLOPs)" if gc else ""))
    chosen = with_gc if gc else without
    attention = config.get("flash_attn") if "flash_attn" in pinned else "sdpa"
    reasons.append(f"attention: {attention}" + ("" if "flash_attn" in pinned else
                   " (PyTorch's fused flash/memory-efficient kernels, no extra package; fa2 needs flash-attn installed)"))
    mem = {"with_checkpointing": {k: round(v, 2) for k, v in with_gc.items()},
           "without_checkpointing": {k: round(v, 2) for k, v in without.items()}, "tokens_note": tokens_note}
    return Plan(hw, b, source, pd, q // pd, files[strategy], gc, attention, round(chosen["total"], 1),
                round(usable, 1), tokens, mem, reasons, refused)


def apply(config: dict, p: Plan) -> dict:
    """The config LlamaFactory will run: the plan's batch split, DeepSpeed, checkpointing, attention."""
    out = dict(config)
    out["per_device_train_batch_size"] = p.per_device_train_batch_size
    out["gradient_accumulation_steps"] = p.gradient_accumulation_steps
    if p.memory_gb_per_gpu is None:
        return out
    if p.deepspeed:
        out["deepspeed"] = p.deepspeed
    else:
        out.pop("deepspeed", None)
    out["disable_gradient_checkpointing"] = not p.gradient_checkpointing
    if p.attention:
        out["flash_attn"] = p.attention
    return out


def describe(p: Plan, s: Sizes | None, model: str) -> str:
    """The plan for a person: what it will do and why, with the arithmetic."""
    hw = p.hardware
    lines = [f"plan for {hw.describe()}{' (asked with --nodes/--gpus/--gpu-memory-gb)' if hw.asked else ''}:"]
    split = (f"effective batch {p.effective_batch} = {p.per_device_train_batch_size} per device x "
             f"{p.gradient_accumulation_steps} accumulation x {hw.world} {'GPU' if hw.gpus_per_node else 'process'}"
             f"{'s' if hw.world > 1 else ''}")
    lines.append(f"  {split}")
    if p.memory_gb_per_gpu is not None and s is not None:
        w, c = p.memory["with_checkpointing"], p.memory["without_checkpointing"]
        lines.append(f"  model {model}: {s.total / 1e9:.2f}B parameters ({s.layers} layers), LoRA {s.lora / 1e6:.1f}M trainable; "
                     f"{p.tokens_per_sample} tokens per sample ({p.memory['tokens_note']})")
        lines.append(f"  memory per GPU (estimate): weights {w['weights']:.1f} GB + LoRA and optimizer state "
                     f"{w['trainable_state']:.1f} GB + activations at {p.per_device_train_batch_size} per device "
                     f"{w['activations']:.1f} GB with gradient checkpointing / {c['activations']:.1f} GB without "
                     f"= {w['total']:.1f} / {c['total']:.1f} GB of {p.usable_gb:.1f} GB usable "
                     f"({hw.gpu_memory_gb:g} GB less 10% and 2 GB)")
    lines += [f"  {r}" for r in p.reasons]
    if p.projection:
        lines += [f"  {line}" for line in p.projection["line"].splitlines()]
    ds = Path(p.deepspeed).name if p.deepspeed else "none"
    lines.append(f"  => deepspeed {ds}, {p.per_device_train_batch_size} x {p.gradient_accumulation_steps}, "
                 f"gradient checkpointing {'on' if p.gradient_checkpointing else 'off'}"
                 + (f", {p.memory_gb_per_gpu:.1f} GB per GPU" if p.memory_gb_per_gpu is not None else ""))
    if p.refused:
        lines.append(f"  => a launch as asked is refused: {p.refused}")
    return "\n".join(lines)
