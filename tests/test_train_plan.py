"""The launch plan for the 32B paper recipe on hardware this machine does not have (--gpus/--gpu-memory-gb).

Hand arithmetic (Qwen3-VL-32B config values, fracdata/train/sizes.py; GB = 1e9 bytes):
  parameters 33,357,390,064 -> bf16 weights 66.71 GB; LoRA r16 134,217,728 x 16 bytes = 2.15 GB
  one sample at cutoff_len 1,024 tokens (no dataset given):
    checkpointing on:  64 x 1024 x 5120 x 2 = 671,088,640 (layer inputs) + 1024 x 150,528 x 2 = 308,281,344
                       (one layer recomputed) + 1024 x 151,936 x 16 = 2,489,319,424 (logits) = 3.469 GB
    checkpointing off: 64 x 1024 x 150,528 x 2 = 19,730,006,016 + 2,489,319,424 = 22.219 GB
  usable: 141 x 0.9 - 2 = 124.9 GB; 80 x 0.9 - 2 = 70.0 GB
"""

from __future__ import annotations

import json

import pytest

from fracdata.cli import main
from fracdata.train import plan, recipes, sizes

PAPER = recipes.RECIPES_ROOT / "qwen3vl_32b_lora_sft_ds3.yaml"
Z3 = str(recipes.RECIPES_ROOT / "deepspeed" / "ds_z3_config.json")
OFFLOAD = str(recipes.RECIPES_ROOT / "deepspeed" / "ds_z3_offload_config.json")


def _plan(capsys, *args):
    rc = main(["train", str(PAPER), "--plan", "--json", *args])
    out, err = capsys.readouterr()
    return rc, (json.loads(out) if rc == 0 else None), err


def test_sizes_match_the_real_architecture_on_the_meta_device(tiny_model):
    import torch
    from transformers import AutoConfig, Qwen3VLConfig, Qwen3VLForConditionalGeneration

    c = sizes.QWEN3VL_32B
    cfg = Qwen3VLConfig(text_config=dict(c["text_config"]), vision_config=dict(c["vision_config"]),
                        tie_word_embeddings=False)
    with torch.device("meta"):
        model = Qwen3VLForConditionalGeneration._from_config(cfg)
    vision = sum(p.numel() for n, p in model.named_parameters() if ".visual." in n)
    s = sizes.sizes(c, lora_rank=16)
    assert (s.total, s.vision) == (sum(p.numel() for p in model.parameters()), vision)
    assert (s.total, s.vision, s.lora, s.lm_matmul) == (33_357_390_064, 595_266_800, 134_217_728, 31_983_534_080)
    # the tiny model, read from its own config.json, counted the same way
    tiny = Qwen3VLForConditionalGeneration._from_config(AutoConfig.from_pretrained(tiny_model))
    assert sizes.sizes(sizes.load_config(tiny_model)).total == sum(p.numel() for p in tiny.parameters())


def test_one_141gb_gpu_plans_no_deepspeed_and_4_x_1(capsys):
    rc, p, err = _plan(capsys, "--gpus", "1", "--gpu-memory-gb", "141")
    assert rc == 0
    assert {k: p[k] for k in ("deepspeed", "per_device_train_batch_size", "gradient_accumulation_steps",
                              "gradient_checkpointing", "memory_gb_per_gpu", "effective_batch", "attention")} == {
        "deepspeed": None, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 1,
        "gradient_checkpointing": True, "memory_gb_per_gpu": 82.7, "effective_batch": 4, "attention": "sdpa"}
    # 66.71 + 2.15 + 4 x 3.469 = 82.74 GB with checkpointing; 66.71 + 2.15 + 4 x 22.219 = 157.74 GB without
    assert p["memory"]["with_checkpointing"] == {"weights": 66.71, "trainable_state": 2.15, "activations": 13.87,
                                                 "total": 82.74}
    assert p["memory"]["without_checkpointing"]["total"] == 157.74 and p["usable_gb"] == 124.9
    assert ("memory per GPU (estimate): weights 66.7 GB + LoRA and optimizer state 2.1 GB + activations at 4 per "
            "device 13.9 GB with gradient checkpointing / 88.9 GB without = 82.7 / 157.7 GB of 124.9 GB usable") in err
    assert "deepspeed: none: the model fits one GPU" in err
    assert "gradient checkpointing on: without it 157.7 GB > 124.9 GB usable" in err


def test_one_80gb_gpu_offloads(capsys):
    rc, p, err = _plan(capsys, "--gpus", "1", "--gpu-memory-gb", "80")
    assert rc == 0
    # unsharded at 1 per device: 66.71 + 2.15 + 3.47 = 72.33 GB > 70.0; ZeRO-3 on one GPU shards nothing
    assert (p["deepspeed"], p["per_device_train_batch_size"], p["gradient_accumulation_steps"],
            p["gradient_checkpointing"]) == (OFFLOAD, 4, 1, True)
    # offloaded: a gathered layer and its prefetch 2 x 487,598,336 x 2 bytes = 1.95 GB + 4 x 3.469 GB
    assert p["memory_gb_per_gpu"] == 15.8
    assert "unsharded it needs 72.3 GB > 70.0 GB usable" in err


EIGHT_REFUSAL = ("effective batch 4 cannot be kept on 8 GPUs (1 x 8): each GPU takes at least 1 sample per step, so "
                 "the batch must be a multiple of 8; pass --effective-batch 8 (recorded in provenance.json) or use 4 GPUs "
                 "(--gpus 4)")


def test_eight_80gb_gpus_plan_a_sharded_launch_and_a_launch_of_batch_4_is_refused(capsys):
    # ZeRO-3 over 8: 66.71 / 8 + 1.95 = 10.29 GB weights, 134.2M x 18 / 8 = 0.30 GB state; without
    # checkpointing 22.22 GB for one sample: 32.8 GB <= 70.0, so checkpointing is off
    sharded = (Z3, 1, 1, False, 32.8, 8)
    rc, p, err = _plan(capsys, "--gpus", "8", "--gpu-memory-gb", "80")
    assert rc == 0  # --plan plans at the smallest batch 8 GPUs keep, and says the launch would stop
    assert (p["deepspeed"], p["per_device_train_batch_size"], p["gradient_accumulation_steps"],
            p["gradient_checkpointing"], p["memory_gb_per_gpu"], p["effective_batch"]) == sharded
    assert p["refused"] == EIGHT_REFUSAL
    assert p["batch_source"] == "the smallest batch 8 GPUs keep (asked: 4 from the recipe (1 per device x 4 accumulation as written))"
    assert "memory per GPU (estimate): weights 10.3 GB" in err
    assert err.splitlines()[-1] == f"  => a launch as asked is refused: {EIGHT_REFUSAL}"
    # a launch of batch 4 on 8 GPUs stops with that line: tests/test_train.py (dry run and --slurm)
    rc, p, err = _plan(capsys, "--gpus", "8", "--gpu-memory-gb", "80", "--effective-batch", "8")
    assert rc == 0
    assert (p["deepspeed"], p["per_device_train_batch_size"], p["gradient_accumulation_steps"],
            p["gradient_checkpointing"], p["memory_gb_per_gpu"], p["effective_batch"]) == sharded
    assert p["batch_source"] == "--effective-batch 8 (recipe: 4)" and p["refused"] is None


def test_two_nodes_of_four_80gb_gpus(capsys):
    rc, p, _ = _plan(capsys, "--nodes", "2", "--gpus", "4", "--gpu-memory-gb", "80")
    assert rc == 0 and p["effective_batch"] == 8 and p["refused"].endswith(
        "pass --effective-batch 8 (recorded in provenance.json) or use 4 GPUs (--gpus-per-node 2)")
    rc, p, _ = _plan(capsys, "--nodes", "2", "--gpus", "4", "--gpu-memory-gb", "80", "--effective-batch", "8")
    assert rc == 0 and p["refused"] is None
    assert (p["hardware"]["nodes"], p["hardware"]["gpus_per_node"], p["processes"]) == (2, 4, 8)
    assert (p["deepspeed"], p["per_device_train_batch_size"], p["gradient_accumulation_steps"],
            p["memory_gb_per_gpu"]) == (Z3, 1, 1, 32.8)
    rc, p, _ = _plan(capsys, "--nodes", "2", "--gpus", "2", "--gpu-memory-gb", "80")  # 4 GPUs keep batch 4
    assert rc == 0 and (p["per_device_train_batch_size"], p["gradient_accumulation_steps"], p["effective_batch"]) == \
        (1, 1, 4)


def test_141gb_gpus_train_ddp_without_deepspeed(capsys):
    rc, p, err = _plan(capsys, "--gpus", "4", "--gpu-memory-gb", "141")
    assert rc == 0 and (p["deepspeed"], p["per_device_train_batch_size"], p["gradient_accumulation_steps"]) == \
        (None, 1, 1)
    assert "DDP over 4 GPUs" in err


def test_set_keys_are_kept_and_pinned_batch_checked(capsys):
    rc, p, err = _plan(capsys, "--gpus", "1", "--gpu-memory-gb", "141", "--set",
                       "disable_gradient_checkpointing=true", "--per-device-batch", "2")
    assert rc == 0 and (p["gradient_checkpointing"], p["per_device_train_batch_size"],
                        p["gradient_accumulation_steps"]) == (False, 2, 2)
    assert "gradient checkpointing off: set with --set" in err
    rc, _, err = _plan(capsys, "--gpus", "1", "--gpu-memory-gb", "141", "--per-device-batch", "3")
    assert rc == 2 and err.splitlines()[-1] == ("error: --per-device-batch 3 does not divide the 4 samples each GPU "
                                                "takes per step (effective batch 4 / 1 GPU(s)): use 1, 2, 4")


def test_without_card_memory_the_recipe_stays_as_written(capsys):
    rc, p, err = _plan(capsys, "--gpus", "4")  # no --gpu-memory-gb, and this machine has no GPU
    assert rc == 0
    assert (p["deepspeed"], p["per_device_train_batch_size"], p["gradient_accumulation_steps"],
            p["gradient_checkpointing"], p["memory_gb_per_gpu"]) == (Z3, 1, 1, True, None)
    assert "memory not planned (card memory unknown (pass --gpu-memory-gb))" in err


@pytest.mark.parametrize("world, effective, error", [(3, 4, True), (4, 4, False), (2, 4, False), (8, 8, False),
                                                     (12, 4, True)])
def test_batch_split_keeps_the_effective_batch(world, effective, error):
    hw = plan.Hardware(1, world, None)
    config = {"per_device_train_batch_size": 1, "gradient_accumulation_steps": 4}
    if error:
        with pytest.raises(Exception, match=f"effective batch {effective} cannot be kept on {world} GPUs"):
            plan.make_plan(config, hw, None, None, "", (effective, "x"))
        return
    p = plan.make_plan(config, hw, None, None, "", (effective, "x"))
    assert p.per_device_train_batch_size * p.gradient_accumulation_steps * world == effective
