"""Every launch plan states its projected wall time at an MFU band, against the right card's peak.

Hand arithmetic (Qwen3-VL-32B, fracdata/train/sizes.py; the paper recipe without a dataset, T = 1,024
tokens of which 576 image tokens):
  useful FLOPs per sample = 4 x 31,983,534,080 x 1,024 + 2 x 412,839,936 x 2,304 + 2 x 179,306,496 x 576
                          = 133,113,483,100,160
  samples: the paper's 13,168 images as the builder splits and rotates them: (13,168 - 1,317) x 4 x 3 = 142,212
  one GPU at 989.4 TFLOPS: 142,212 x 133.11 TFLOP / (989.4 TFLOP/s x 0.30) = 17.7 h; x 0.20: 26.6 h
  one 80 GB card, CPU offload, 4 per device with checkpointing: 35,553 micro-batches x 3 passes x 66.71 GB
  (33,357,390,064 bf16 weights) / 25 GB/s = 284,629 s = 79.1 h
"""

from __future__ import annotations

import json

import pytest

from fracdata.cli import main
from fracdata.train import gpus, recipes

PAPER = recipes.RECIPES_ROOT / "qwen3vl_32b_lora_sft_ds3.yaml"


@pytest.mark.parametrize("name, memory, key, peak", [
    ("NVIDIA H100 80GB HBM3", 85.0, "H100 SXM", 989.4),
    ("NVIDIA H100 PCIe", 85.0, "H100 PCIe", 756.5),
    ("NVIDIA H100 NVL", 100.0, "H100 NVL", 835.5),
    ("NVIDIA H100", 100.5, "H100 NVL", 835.5),  # 94 GiB: only the NVL card has it
    ("NVIDIA H100", 85.0, None, None),  # SXM or PCIe: the name does not say, so no MFU is made up
    ("NVIDIA H200", 150.0, "H200 SXM", 989.4),
    ("NVIDIA H200 NVL", 150.0, "H200 NVL", 835.5),
    ("NVIDIA A100-SXM4-80GB", 85.0, "A100", 312.0),
    (None, 80.0, "H100 SXM", 989.4),  # --gpu-memory-gb 80 without a name: the assumption is stated
    (None, 141.0, "H200 SXM", 989.4),
    (None, 48.0, None, None),
])
def test_peaks_by_name_and_memory(name, memory, key, peak):
    got_key, how = gpus.card(name, memory)
    assert got_key == key
    assert gpus.peak_tflops(name, memory)[0] == peak
    if name is None and key:
        assert "no name: assumed SXM" in how


def _plan(capsys, *args):
    assert main(["train", str(PAPER), "--plan", "--json", *args]) == 0
    out, err = capsys.readouterr()
    return json.loads(out)["projection"], err


def test_one_141gb_card_projects_18_to_27_hours(capsys):
    p, err = _plan(capsys, "--gpus", "1", "--gpu-memory-gb", "141")
    assert (p["samples"], p["useful_tflop_per_sample"], p["peak_tflops"], p["mfu_band"]) == (142_212, 133.11, 989.4,
                                                                                           [0.2, 0.3])
    assert p["hours"] == [17.7, 26.6] and "offload_floor_hours" not in p
    assert ("  projected wall time: 18-27 h at 20%-30% MFU: 142,212 samples x 133.1 TFLOP / (1 GPU x 989.4 TFLOPS "
            "dense bf16)") in err.splitlines()
    assert "the paper's 13,168 images (docs/study.md) as `fracdata build` splits and rotates them, x 3 epochs" in err


def test_the_80gb_offload_plan_states_its_time_and_the_host_link_governs(capsys):
    p, err = _plan(capsys, "--gpus", "1", "--gpu-memory-gb", "80")
    assert p["offload_floor_hours"] == 79.1 and p["hours"] == [17.7, 26.6]
    assert ("    CPU offload gathers the 66.7 GB of bf16 weights onto the GPU 3x per micro-batch: 35,553 x 3 x 66.7 GB / "
            "25 GB/s = at least 79 h, which governs") in err.splitlines()
    assert "card: H100 SXM (80 GB, no name: assumed SXM; an H100 PCIe peaks at 756.5, an A100 at 312)" in err


def test_every_plan_says_its_projection_or_why_there_is_none(capsys):
    _, err = _plan(capsys, "--gpus", "4", "--gpu-memory-gb", "141")  # DDP over 4: a quarter of the time
    assert "  projected wall time: 4.4-6.6 h at 20%-30% MFU: 142,212 samples x 133.1 TFLOP / (4 GPU x 989.4" in err
    _, err = _plan(capsys, "--gpus", "1", "--gpu-memory-gb", "48")
    assert "  projected wall time: none (card unknown (no name, memory not one of 80 or 141 GB))" in err
    _, err = _plan(capsys, "--gpus", "4")  # memory unknown: nothing planned, and no card to scale from
    assert "  projected wall time: none (card unknown" in err
