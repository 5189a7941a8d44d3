"""The tiny random Qwen3-VL: loads with the Auto classes, processes images, generates, is deterministic."""

from __future__ import annotations

import hashlib
import json

import numpy as np
from PIL import Image

from fracdata.answer import render_answer, render_prompt
from fracdata.train.tiny_model import QWEN_ADDED_TOKENS, build_tiny_model, count_parameters


def _image(h=200, w=300, seed=0):
    return Image.fromarray((np.random.RandomState(seed).rand(h, w, 3) * 255).astype("uint8"))


def _inputs(processor):
    messages = [{"role": "user", "content": [
        {"type": "image"}, {"type": "text", "text": render_prompt().replace("<image>", "")}]}]
    text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return text, processor(images=[_image()], text=[text], return_tensors="pt")


def test_loads_with_auto_classes_and_generates(tiny_model):
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    processor = AutoProcessor.from_pretrained(tiny_model)
    model = AutoModelForImageTextToText.from_pretrained(tiny_model)
    assert type(processor).__name__ == "Qwen3VLProcessor"
    assert type(model).__name__ == "Qwen3VLForConditionalGeneration"

    text, inputs = _inputs(processor)
    assert text.startswith("<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Which fracture")
    assert text.endswith("<|im_end|>\n<|im_start|>assistant\n")
    # mm_token_type_ids is what gives image tokens their 2-D positions in transformers 5.6
    assert set(inputs) == {"input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw"}
    # 200x300 is below Qwen3-VL's 256*256 minimum: smart_resize scales it up to 224x320 pixels,
    # i.e. 14x20 patches of 16 = 280 patches, merged 2x2 -> 70 image tokens
    assert inputs["image_grid_thw"].tolist() == [[1, 14, 20]]
    assert inputs["pixel_values"].shape == (280, 3 * 2 * 16 * 16)
    image_id = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert int((inputs["input_ids"] == image_id).sum()) == 70
    assert int(inputs["mm_token_type_ids"].sum()) == 70

    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=6)
    assert out.shape == (1, inputs["input_ids"].shape[1] + 6)  # greedy, random: never stops early here
    again = model.generate(**inputs, max_new_tokens=6)
    assert torch.equal(out, again)  # generation_config is greedy


def test_tokenizer_has_qwen_special_tokens_in_order(tiny_model):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model)
    ids = [tok.convert_tokens_to_ids(t) for t, _ in QWEN_ADDED_TOKENS]
    first = ids[0]
    assert ids == list(range(first, first + 26))
    assert tok.eos_token == "<|im_end|>" and tok.pad_token == "<|endoftext|>" and tok.bos_token is None
    config = json.loads((tiny_model / "config.json").read_text())
    assert config["image_token_id"] == tok.convert_tokens_to_ids("<|image_pad|>")
    assert config["vision_start_token_id"] == tok.convert_tokens_to_ids("<|vision_start|>")
    assert config["text_config"]["vocab_size"] == 1024 >= len(tok)
    # answers tokenise compactly: "Features", ":", then two tokens per id
    answer = render_answer(["dimple_equiaxed", "river_pattern"])
    assert tok.tokenize(answer) == ["Features", ":", "Ġdimple", "_equiaxed", ",", "Ġriver", "_pattern"]
    assert tok.decode(tok(answer).input_ids) == answer


def test_parameter_count_and_readme(tiny_model):
    n = count_parameters(tiny_model)
    assert 400_000 <= n <= 800_000, n  # ~0.55M: see the size table in fracdata/train/tiny_model.py
    readme = (tiny_model / "README.md").read_text()
    assert "randomly initialised" in readme and "tests and `fracdata demo`" in readme


def _digest(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_same_seed_same_bytes_other_seed_other_weights(tiny_model, tmp_path):
    same = _digest(build_tiny_model(tmp_path / "a", seed=0))
    assert same == _digest(tiny_model)
    other = _digest(build_tiny_model(tmp_path / "b", seed=1))
    assert other["model.safetensors"] != same["model.safetensors"]
    assert {k: v for k, v in other.items() if k not in ("model.safetensors", "README.md")} == \
        {k: v for k, v in same.items() if k not in ("model.safetensors", "README.md")}


def test_cli_prints_what_it_wrote(tmp_path, capsys):
    from fracdata.cli import main

    assert main(["tiny-model", str(tmp_path / "m"), "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"wrote {tmp_path / 'm'}/ (8 files, ")
    assert "552,000 parameters, random weights, seed 3)" in out


def test_chat_template_is_qwen3_vl_instruct(tiny_model):
    # byte-identical to Qwen3-VL-8B-Instruct's chat_template (5,292 bytes)
    data = (tiny_model / "chat_template.jinja").read_bytes()
    assert hashlib.sha256(data).hexdigest() == "3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4"
