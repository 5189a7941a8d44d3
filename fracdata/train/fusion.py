"""Qwen3-VL's patch embedding as one matrix multiply: transformers' opt-in fused path, on by default.

`visual.patch_embed.proj` is an nn.Conv3d whose stride equals its kernel (3 x 2 x 16 x 16 = 1,536
inputs per patch), so it is exactly a Linear over the flattened patch. PyTorch runs the Conv3d far
slower than that matmul on some versions and devices (pytorch issue 174051; transformers issue
45750); transformers 5.6 swaps in the Linear when `from_pretrained` gets
`fusion_config={"patch_embeddings": True}` or finds the same key in the model's config.json
(transformers PR 45041). LlamaFactory passes neither. Measured here on CPU with torch 2.14
(benchmarks/perf/patch_embed.py, docs/train.md): forward+backward 10.7x faster in fp32 and 281x
in bf16 at the 32B model's vision width, outputs equal within 4e-6 (fp32).

Checkpoints are unaffected: transformers converts the Conv3d weight (out, 3, 2, 16, 16) to the
Linear's (out, 1,536) on load and saves the Conv3d layout back, and LlamaFactory never puts LoRA
on `patch_embed` (its lora_conflict_keys), so an adapter or checkpoint trained with the fused path
loads without it and the reverse (tests/test_fusion.py).

One trap, handled here: transformers registers the fusion for the whole process (per model
type), so a second `fusion_config={"patch_embeddings": True}` in one process raises ValueError
("conflicts with an existing conversion mapping"), and once registered every later load of that
model type is fused. `from_pretrained_kwargs` therefore asks for the fusion only the first time,
passes `fusion_config={}` after (so a config.json that names it does not ask again), and refuses
an unfused load in a process that already fused (run it in its own process).

Training: `fracdata train` hands LlamaFactory a view of the model folder (symlinks to every file,
and a config.json that names the fusion, or leaves it out with --no-fused-patch-embed) when the
folder's own config.json says otherwise; the choice is recorded in provenance.
"""

from __future__ import annotations

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

from fracdata.errors import FracdataError

FUSION = {"patch_embeddings": True}
_SOURCE = r"patch_embed\.proj\.weight$"  # the converter transformers registers for this fusion


def registered(model_type: str = "qwen3_vl") -> bool:
    """True when this process already fuses `model_type`'s patch embedding (transformers' global)."""
    from transformers.conversion_mapping import get_checkpoint_conversion_mapping

    return any(_SOURCE in tuple(getattr(c, "source_patterns", ()) or ())
               for c in get_checkpoint_conversion_mapping(model_type) or ())


def from_pretrained_kwargs(fused: bool, model_type: str = "qwen3_vl", who: str = "model") -> dict:
    """The `fusion_config` to pass to from_pretrained so the load is fused (or not) as asked."""
    if registered(model_type):
        if not fused:
            raise FracdataError(f"{who}: this process already loaded a {model_type} model with the fused patch "
                                "embedding (transformers applies it process-wide): load the unfused one in its own "
                                "process, or set fused_patch_embed: true")
        return {"fusion_config": {}}  # already fused process-wide; asking again would raise
    return {"fusion_config": dict(FUSION) if fused else {}}


@contextmanager
def built_as_written():
    """Build models from a config as the architecture is written (the Conv3d), even in a process that
    already fused: transformers' patch registry would otherwise swap the fused class in while the
    model is constructed, and its Linear init draws other random numbers, so `fracdata tiny-model`
    would write other weights for the same seed."""
    from transformers import monkey_patching

    fused = {k: v for k, v in monkey_patching.get_patch_mapping().items() if v.__name__.startswith("Fused")}
    if fused:
        monkey_patching.unregister_patch_mapping(list(fused))
    try:
        yield
    finally:
        if fused:
            monkey_patching.register_patch_mapping(fused, overwrite=True)


def config_fused(model_dir: Path) -> bool | None:
    """What a model folder's config.json says (True/False), or None when it names no fusion."""
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return None
    fusion = cfg.get("fusion_config") if isinstance(cfg, dict) else None
    return None if fusion is None else bool(isinstance(fusion, dict) and fusion.get("patch_embeddings"))


def model_view(model_dir: Path, out: Path, fused: bool) -> Path:
    """`model_dir` itself when its config.json already says `fused`, else `out`: a folder of symlinks
    to every file of `model_dir` with a config.json that does (what LlamaFactory then loads)."""
    model_dir = Path(model_dir).resolve()
    if bool(config_fused(model_dir)) == fused:
        return model_dir
    try:
        cfg = json.loads((model_dir / "config.json").read_text())
    except (OSError, ValueError) as e:
        raise FracdataError(f"{model_dir}/config.json: cannot read the model's config ({e})") from None
    if fused:
        cfg["fusion_config"] = dict(FUSION)
    else:
        cfg.pop("fusion_config", None)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for p in model_dir.iterdir():
        if p.name != "config.json":
            (out / p.name).symlink_to(p)
    (out / "config.json").write_text(json.dumps(cfg, indent=2) + "\n")
    return out
