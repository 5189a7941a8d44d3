"""Task files, model entries, prompts: the exact training prompt and LlamaFactory's token ids."""

from __future__ import annotations

from pathlib import Path

import pytest

from fracbench.cli import main
from fracdata.inference.entry import MODELS_DIR, load_model
from fracdata.inference.task import TASKS_DIR, load_task, prompt_text, task_hash
from fracdata.answer import render_prompt
from fracdata.errors import FracdataError
from fracdata.train.qwen import chat_text, lf_preprocess
from fracdata.taxonomy import load_taxonomy

TRAINING_CHAT = (
    "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Which fracture-surface features does this "
    "fractograph show? Answer in one line as \"Features: \" followed by fracdata taxonomy ids separated by \", \", "
    "or \"Features: none\".<|im_end|>\n<|im_start|>assistant\n")


def test_every_shipped_task_and_model_entry_loads(monkeypatch):
    for var in ("FRACBENCH_BASE_PATH", "FRACBENCH_FT_PATH", "GEMINI_MODEL", "LF_API_BASE_URL", "LF_API_MODEL",
                "VLLM_BASE_URL", "VLLM_MODEL"):
        monkeypatch.delenv(var, raising=False)
    tasks = sorted(p.name for p in Path(TASKS_DIR).rglob("*.y*ml"))
    models = sorted(p.name for p in Path(MODELS_DIR).rglob("*.y*ml"))
    assert tasks == ["fractography-v1.yaml"]
    assert models == ["gemini-3.1-pro.yaml", "gpt-5.5.yaml", "lf-api.yaml", "tiny-base.yaml", "tiny-ft.yaml", "vllm-served.yaml"]
    for name in models:
        entry = load_model(name[:-5])
        assert entry.name == name[:-5]
    assert "base" in load_model("tiny-base").name
    assert load_model("tiny-base").path == "models/tiny-qwen3vl" and load_model("tiny-ft").path == "runs/demo/full"
    gpt = load_model("gpt-5.5")
    assert gpt.api_key_env == "OPENAI_API_KEY" and "temperature" not in gpt.decoding
    assert set(gpt.decoding) == {"max_completion_tokens", "reasoning_effort"}
    task, _ = load_task("fractography-v1")
    assert task.gold == "data/synthetic/gold.jsonl" and task.default_prompt == "training"


def test_training_prompt_is_byte_for_byte_the_dataset_prompt():
    task, _ = load_task("fractography-v1")
    assert prompt_text(task, "training") == render_prompt()
    assert chat_text(prompt_text(task, "training")) == TRAINING_CHAT
    tax_prompt = prompt_text(task, "taxonomy")
    assert tax_prompt.startswith("<image>") and tax_prompt.count("<image>") == 1
    assert all(f"- {fid}: " in tax_prompt for fid in load_taxonomy().ids)
    assert tax_prompt.endswith('separated by ", ", or "Features: none".')


def test_task_hash_follows_the_prompts(tmp_path):
    task, path = load_task("fractography-v1")
    h = task_hash(task)
    assert h == task_hash(load_task(str(path))[0]) and len(h) == 64
    changed = tmp_path / "t.yaml"
    changed.write_text(path.read_text().replace("List only features you can see.", "List what you see."))
    assert task_hash(load_task(str(changed))[0]) != h
    regold = tmp_path / "g.yaml"  # another gold file does not invalidate cached predictions
    regold.write_text(path.read_text().replace("gold: data/synthetic/gold.jsonl", "gold: other/gold.jsonl"))
    assert task_hash(load_task(str(regold))[0]) == h


def test_model_entry_expansion_overrides_and_errors(tmp_path, monkeypatch):
    entry = tmp_path / "m.yaml"
    entry.write_text("kind: local\npath: ${CKPT_ROOT}/ft-${RUN:-7}\n")
    monkeypatch.setenv("CKPT_ROOT", "/data/runs")
    assert load_model(str(entry)).path == "/data/runs/ft-7" and load_model(str(entry)).name == "m"
    monkeypatch.setenv("RUN", "9")
    assert load_model(str(entry)).path == "/data/runs/ft-9"
    assert load_model(str(entry), overrides={"path": {"m": "/x"}, "adapter": {"m": "/a"}}).adapter == "/a"
    monkeypatch.delenv("CKPT_ROOT")
    with pytest.raises(FracdataError) as e:
        load_model(str(entry))
    assert str(e.value) == f"{entry}: path: ${{CKPT_ROOT}} is not set: export CKPT_ROOT=... or write ${{CKPT_ROOT:-default}}"
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: local\npath: x\ntemprature: 0\ndecoding: {temperature: 0}\n")
    with pytest.raises(FracdataError) as e:
        load_model(str(bad))
    assert str(e.value) == f"{bad}: temprature: Extra inputs are not permitted"
    bad.write_text("kind: openai-compatible\nbase_url: http://x\nmodel: m\ndecoding: {max_new_tokens: 5}\n")
    with pytest.raises(FracdataError) as e:
        load_model(str(bad))
    assert str(e.value) == (f"{bad}: file: Value error, decoding keys ['max_new_tokens'] do not apply to kind "
                            "'openai-compatible' (allowed: ['extra_body', 'max_completion_tokens', 'max_tokens', "
                            "'reasoning_effort', 'seed', 'temperature', 'top_p'])")
    bad.write_text("kind: local\npath: x\nengine: vllm\n")  # the in-process vLLM engine is gone (issue 13)
    with pytest.raises(FracdataError) as e:
        load_model(str(bad))
    assert str(e.value) == (f"{bad}: file: Value error, `engine` is gone: local checkpoints run with transformers; to "
                            "use vLLM, serve the checkpoint with `vllm serve` and score it as kind openai-compatible "
                            "(docs/bench.md)")


def test_cli_errors_are_one_line(tmp_path, capsys):
    assert main(["infer", "--model", "no-such-model", "--gold", str(tmp_path / "g.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err == f"error: {tmp_path / 'g.jsonl'}: gold file not found (make synth writes data/synthetic/gold.jsonl; or pass --gold)\n"
    for cmd in ("infer", "score", "report", "run"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        assert "--out" in capsys.readouterr().out


def test_inference_input_ids_equal_llamafactory_training_ids(tiny_model):
    """Same text, pixels and token ids as LlamaFactory's qwen3_vl_nothink template + Qwen3-VL plugin."""
    from PIL import Image
    from transformers import AutoProcessor

    from llamafactory.data import get_template_and_fix_tokenizer
    from llamafactory.hparams import DataArguments

    processor = AutoProcessor.from_pretrained(tiny_model)
    tok = processor.tokenizer
    template = get_template_and_fix_tokenizer(tok, DataArguments(template="qwen3_vl_nothink"))
    for size in ((96, 128), (1000, 900), (20, 300)):  # as is; shrunk to <= 768*768 px; widened to >= 28 px
        image = Image.new("L", size, 90)
        msgs = template.mm_plugin.process_messages(
            [{"role": "user", "content": render_prompt()}, {"role": "assistant", "content": "Features: none"}],
            [image], [], [], processor)
        lf_ids, _ = template.encode_oneturn(tok, msgs)
        lf_ids, _ = template.mm_plugin.process_token_ids(lf_ids, None, [image], [], [], tok, processor)
        ours = processor(text=[chat_text(render_prompt())], images=[lf_preprocess(image, 768 * 768, 32 * 32)],
                         return_tensors="pt")
        assert ours["input_ids"][0].tolist() == lf_ids, size
        assert "mm_token_type_ids" in ours


def test_resize_gives_llamafactorys_own_pixels_and_sizes():
    """lf_preprocess against LlamaFactory's Qwen3-VL plugin itself, on noise (so resampling shows):
    as is; shrunk to <= 768*768 px; widened to >= 28 px; raised to >= 32*32 px; an aspect over 200
    cut to 180. trained_size (the token budget's arithmetic) names the same size."""
    import numpy as np
    from PIL import Image

    from llamafactory.data.mm_plugin import Qwen3VLPlugin

    from fracdata.train.qwen import trained_size

    plugin = Qwen3VLPlugin(image_token="<|image_pad|>", video_token=None, audio_token=None)
    rng = np.random.default_rng(0)
    for size in ((96, 128), (1000, 900), (20, 300), (20, 40), (28, 6000)):
        for mode in ("L", "RGB"):
            shape = size[::-1] + ((3,) if mode == "RGB" else ())
            image = Image.fromarray((rng.random(shape) * 255).astype(np.uint8), mode)
            ours, theirs = lf_preprocess(image, 768 * 768, 32 * 32), plugin._preprocess_image(
                image, image_max_pixels=768 * 768, image_min_pixels=32 * 32)
            assert ours.mode == theirs.mode == "RGB" and ours.size == theirs.size == trained_size(*size, 768 * 768, 32 * 32)
            assert np.array_equal(np.asarray(ours), np.asarray(theirs)), (size, mode)
    assert trained_size(1000, 900, 768 * 768, 32 * 32) == (809, 728) and trained_size(28, 6000, 768 * 768, 32 * 32) == (28, 5040)


def test_a_served_checkpoint_renders_the_training_text_from_our_request(tiny_model):
    """vllm serve applies the checkpoint's own chat template (Qwen3-VL's, which the tiny model
    carries) to the Chat Completions content parts we send: it must give LlamaFactory's
    qwen3_vl_nothink turn, byte for byte, for every prompt variant."""
    from transformers import AutoProcessor

    from fracdata.inference.endpoint import content_parts

    processor = AutoProcessor.from_pretrained(tiny_model)
    task, _ = load_task("fractography-v1")
    for variant in task.prompts:
        prompt = prompt_text(task, variant)
        messages = [{"role": "user", "content": content_parts(prompt, "data:image/png;base64,AAAA")}]
        text = processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        assert text == chat_text(prompt), variant
