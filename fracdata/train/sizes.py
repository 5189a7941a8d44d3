"""Qwen3-VL sizes from a model's config.json values: parameters, LoRA, activations, useful FLOPs.

Counted module by module as transformers 5.6 builds Qwen3VLForConditionalGeneration (checked
against the real model on torch's meta device in tests/test_train_plan.py), so the launch plan
(plan.py) and the GPU check's MFU (benchmarks/perf/gpu_train_check.py) need no weights.

QWEN3VL_32B holds the values of Qwen/Qwen3-VL-32B-Instruct's config.json (transformers 5 layout;
the library copy read was a Qwen3-VL-32B fine-tune's config.json, same architecture values):
text hidden 5120, 64 layers, 64 query heads and 8 KV heads of 128, MLP 25,600, vocab 151,936,
untied lm_head; vision 27 blocks x 1152 (MLP 4304), 16-px patches, temporal patch 2, 2x2 merge
to 5120, deepstack mergers after blocks 8/16/24. Worked through in `_text`/`_vision` below:
32,762,123,264 language model + 595,266,800 vision = 33,357,390,064 parameters (32.76B + 0.60B =
33.36B) = 66.7 GB in bf16 (tests/test_train_plan.py checks these against the real module tree).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fracdata.errors import FracdataError

QWEN3VL_32B = {
    "model_type": "qwen3_vl", "tie_word_embeddings": False,
    "text_config": {"hidden_size": 5120, "num_hidden_layers": 64, "num_attention_heads": 64,
                    "num_key_value_heads": 8, "head_dim": 128, "intermediate_size": 25600,
                    "vocab_size": 151936, "attention_bias": False},
    "vision_config": {"depth": 27, "hidden_size": 1152, "intermediate_size": 4304, "num_heads": 16,
                      "in_channels": 3, "patch_size": 16, "temporal_patch_size": 2, "spatial_merge_size": 2,
                      "out_hidden_size": 5120, "num_position_embeddings": 2304,
                      "deepstack_visual_indexes": [8, 16, 24]},
}
KNOWN = {"Qwen/Qwen3-VL-32B-Instruct": QWEN3VL_32B}  # hub ids the planner knows without a download


@dataclass(frozen=True)
class Sizes:
    layers: int
    hidden: int
    vocab: int
    per_layer: int  # one decoder layer's parameters (linears + norms)
    lm_matmul: int  # language-model matmul weights: every layer's 7 linears + lm_head (no input embedding)
    embed: int  # input embedding (a lookup, not a matmul)
    text: int  # whole language model incl. embeddings and norms
    vision: int  # whole vision tower incl. patch embedding, position table and mergers
    vision_patch_matmul: int  # matmul weights applied per patch: patch-embed Conv3d + every block's linears
    vision_merge_matmul: int  # matmul weights applied per merged token (4 patches): the mergers' linears
    lora: int  # LoRA parameters (rank r on every language-model linear)
    act_per_token_layer: int  # activation elements one layer saves per token for backward (no checkpointing)
    merge: int  # patches per merged (LM) image token: spatial_merge_size^2

    @property
    def total(self) -> int:
        return self.text + self.vision


def load_config(model: str) -> dict | None:
    """config.json of a local model folder, the built-in table for known hub ids, else None."""
    folder = Path(str(model))
    if (folder / "config.json").is_file():
        return json.loads((folder / "config.json").read_text())
    return KNOWN.get(str(model).rstrip("/"))


def _text(t: dict, tied: bool, lora_rank: int) -> tuple[int, int, int, int, int, int]:
    h, inter, vocab = t["hidden_size"], t["intermediate_size"], t["vocab_size"]
    hd = t.get("head_dim") or h // t["num_attention_heads"]
    q, kv = t["num_attention_heads"] * hd, t["num_key_value_heads"] * hd
    bias = q + 2 * kv + h if t.get("attention_bias") else 0
    # 32B: q 5120x8192 + k,v 5120x1024 each + o 8192x5120 = 94,371,840; gate/up/down 3 x 5120x25,600 = 393,216,000
    linears = h * q + 2 * h * kv + q * h + 3 * h * inter
    per_layer = linears + bias + 2 * h + 2 * hd  # + input/post-attention RMSNorm (h each), q_norm/k_norm (head_dim each)
    embed = vocab * h  # 151,936 x 5120 = 777,912,320
    lm_head = 0 if tied else vocab * h
    layers = t["num_hidden_layers"]
    text = layers * per_layer + embed + lm_head + h  # + final norm: 64 x 487,598,336 + 2 x 777,912,320 + 5120 = 32.76B
    lm_matmul = layers * linears + vocab * h  # lm_head multiplies every position even when tied: 31.98B
    # LoRA A (in x r) + B (r x out) on the 7 linears: (in + out) x r; 32B, r16: 2,097,152 per layer, 134.2M in all
    lora = layers * lora_rank * ((h + q) * 2 + (h + kv) * 2 + (h + inter) * 3)
    # Saved for backward per token per layer (elements; frozen base + LoRA, SDPA/flash attention: no T x T scores):
    # attention: norm input and output 2h, q and k before their norms q + kv, q/k/v after RoPE q + 2kv,
    # attention output q (o_proj's LoRA input); MLP: norm input and output 2h, gate, SiLU(gate), up and
    # their product 4 x inter. 32B: 4 x 5120 + 3 x 8192 + 3 x 1024 + 4 x 25,600 = 150,528 (x 2 bytes = 301 kB)
    act = 4 * h + 3 * q + 3 * kv + 4 * inter
    return per_layer, lm_matmul, embed, text, lora, act


def _vision(v: dict) -> tuple[int, int, int]:
    vh, vi, m = v["hidden_size"], v["intermediate_size"], v.get("spatial_merge_size", 2)
    patch_in = v.get("in_channels", 3) * v.get("temporal_patch_size", 2) * v["patch_size"] ** 2  # 3 x 2 x 16 x 16 = 1536
    patch_embed = patch_in * vh + vh  # Conv3d 1536 -> 1152 with bias: 1,770,624
    block_linears = vh * 3 * vh + vh * vh + 2 * vh * vi  # qkv, proj, fc1, fc2: 15,224,832 at 32B widths
    block = block_linears + (3 * vh + vh + vi + vh) + 4 * vh  # + biases 10,064 + two LayerNorms 4,608 = 15,239,504
    mh = vh * m * m  # merger input: 2x2 patches concatenated, 4608
    merger_linears = mh * mh + mh * v["out_hidden_size"]  # fc1 4608x4608 + fc2 4608x5120 = 44,826,624
    merger_bias = mh + v["out_hidden_size"]
    mergers = 1 + len(v.get("deepstack_visual_indexes", []))  # the main merger + one per deepstack index
    merger_norms = 2 * vh + (mergers - 1) * 2 * mh  # main merger norms 1152 wide, deepstack ones 4608 wide
    # 32B widths: 1,770,624 + 2304 x 1152 = 2,654,208 + 27 x 15,239,504 = 411,466,608
    # + 4 x (44,826,624 + 9,728) = 179,345,408 + 2 x 1152 + 3 x 2 x 4608 = 29,952 -> 595,266,800
    vision = (patch_embed + v["num_position_embeddings"] * vh + v["depth"] * block
              + mergers * (merger_linears + merger_bias) + merger_norms)
    return vision, patch_in * vh + v["depth"] * block_linears, mergers * merger_linears


def sizes(config: dict, lora_rank: int = 16) -> Sizes:
    """Sizes of a Qwen3-VL from its config.json dict; FracdataError for another architecture."""
    if config.get("model_type") != "qwen3_vl" or "text_config" not in config or "vision_config" not in config:
        raise FracdataError(f"model type {config.get('model_type')!r}: the planner knows Qwen3-VL (qwen3_vl) only")
    t, v = config["text_config"], config["vision_config"]
    tied = bool(config.get("tie_word_embeddings", t.get("tie_word_embeddings", False)))
    per_layer, lm_matmul, embed, text, lora, act = _text(t, tied, lora_rank)
    vision, patch_mm, merge_mm = _vision(v)
    return Sizes(layers=t["num_hidden_layers"], hidden=t["hidden_size"], vocab=t["vocab_size"], per_layer=per_layer,
                 lm_matmul=lm_matmul, embed=embed, text=text, vision=vision, vision_patch_matmul=patch_mm,
                 vision_merge_matmul=merge_mm, lora=lora, act_per_token_layer=act,
                 merge=v.get("spatial_merge_size", 2) ** 2)


def useful_flops(s: Sizes, lm_tokens: int, image_tokens: int) -> float:
    """Useful training FLOPs for one sample: frozen-base LoRA, frozen vision tower.

    Language model: forward 2 + input-gradient backward 2 = 4 FLOPs per matmul weight per token
    (text and image tokens alike; LoRA's own matmuls and attention scores are left out, ~2%).
    Vision tower: forward only while frozen, 2 FLOPs per matmul weight per patch, the mergers per
    merged token. Gradient-checkpoint recompute is not useful work, so it is not counted.
    """
    patches = image_tokens * s.merge
    return (4.0 * s.lm_matmul * lm_tokens + 2.0 * s.vision_patch_matmul * patches
            + 2.0 * s.vision_merge_matmul * image_tokens)
