"""The adapter check of a served LoRA entry (`lora_base`): a server that answers the adapter's name
with the base model's answers (what vLLM does with an adapter whose module names match nothing) is
refused before anything is scored; one whose adapter changes an answer passes. The server is the
local OpenAI-protocol stand-in; the local-checkpoint check is in tests/test_release_model.py."""

from __future__ import annotations

import json

import pytest

from fracbench.cli import main
from tests.support.bench_kit import make_gold
from tests.support.openai_server import OpenAIStub


@pytest.fixture()
def gold(synth_small, tmp_path):
    make_gold(synth_small, tmp_path / "gold", n=4)
    return tmp_path / "gold" / "gold.jsonl"


def _entry(tmp, url: str) -> str:
    p = tmp / "ft.yaml"
    p.write_text(f"name: ft\nkind: openai-compatible\nbase_url: {url}\nmodel: fracdata-lora\nlora_base: Qwen/Qwen3-VL-2B\n"
                 "max_retries: 0\ndecoding: {temperature: 0}\n")
    return str(p)


def test_a_served_adapter_answering_as_its_base_is_refused(gold, tmp_path, capsys):
    with OpenAIStub(responder=lambda kind, body: "Features: dimple") as stub:  # every name, the same answer
        common = ["--gold", str(gold), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")]
        assert main(["infer", "--model", _entry(tmp_path, stub.base_url), *common]) == 2
        asked = [b["model"] for _, b, _ in stub.requests if b]
    err = capsys.readouterr().err
    assert err == ("error: model ft: the adapter served model 'fracdata-lora' changes nothing: 3/3 probe answers identical "
                   "against the base Qwen/Qwen3-VL-2B. Its weights are not applied (module names that match nothing?); its "
                   "scores would be the base model's (--adapter-check warn scores it anyway, flagged in the report)\n")
    assert sorted(asked) == ["Qwen/Qwen3-VL-2B"] * 3 + ["fracdata-lora"] * 3  # 3 probes each, nothing scored
    assert not (tmp_path / "out" / "predictions" / "ft.jsonl").exists()

    # --adapter-check warn: scored, and flagged in the predictions, metrics.json and the report
    with OpenAIStub(responder=lambda kind, body: "Features: dimple") as stub:
        assert main(["run", "--models", _entry(tmp_path, stub.base_url), *common, "--adapter-check", "warn"]) == 0
    out = capsys.readouterr().out
    assert "WARNING: model ft: the adapter served model 'fracdata-lora' changes nothing: 3/3 probe answers" in out
    meta = json.loads((tmp_path / "out" / "predictions" / "ft.meta.json").read_text())
    check = meta["adapter_check"]
    assert (check["inert"], check["probes"], check["same_answers"], check["mode"]) == (True, 3, 3, "warn")
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["provenance"]["models"]["ft"]["adapter_check"]["inert"] is True
    report = (tmp_path / "out" / "report.md").read_text()
    assert ("> **WARNING: `ft`'s adapter changes nothing**: 3/3 probe answers are identical to its base "
            "`Qwen/Qwen3-VL-2B`. Its row is the base model's score under the adapter's name") in report


def test_a_served_adapter_that_changes_an_answer_passes_and_is_not_asked_again(gold, tmp_path, capsys):
    def responder(kind, body):
        return "Features: dimple" if body["model"] == "Qwen/Qwen3-VL-2B" else "Features: cleavage_facet"

    with OpenAIStub(responder=responder) as stub:
        entry = _entry(tmp_path, stub.base_url)
        common = ["--gold", str(gold), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")]
        assert main(["infer", "--model", entry, *common]) == 0
        first = len(stub.requests)
        assert main(["infer", "--model", entry, *common]) == 0  # predictions and the check are cached
        assert len(stub.requests) == first
    out = capsys.readouterr().out
    assert "model ft: adapter applied (0/3 probe answers identical)\n" in out
    assert "model ft: adapter applied (checked before, 3 probes; cached)\n" in out
    meta = json.loads((tmp_path / "out" / "predictions" / "ft.meta.json").read_text())
    assert meta["adapter_check"]["inert"] is False and meta["adapter_check"]["cached"] is True
    assert first == 3 * 2 + 4  # 3 probes x (base, adapter), then the 4 gold images


def test_lora_base_belongs_to_served_entries(tmp_path, capsys):
    p = tmp_path / "x.yaml"
    p.write_text("name: x\nkind: local\npath: models/tiny-qwen3vl\nlora_base: b\n")
    assert main(["infer", "--model", str(p), "--gold", str(tmp_path / "g.jsonl"), "--out", str(tmp_path)]) == 2
    assert "lora_base" in capsys.readouterr().err


def test_a_local_adapter_peft_loads_without_its_trained_weights_is_refused(synth_small, tiny_model, tmp_path, capsys):
    """An adapter saved with init_lora_weights false, its weight names changed: peft 0.18 warns
    "missing adapter keys" and starts the LoRA layers random, so the model differs from its base
    (the logits move) but holds none of the trained weights: refused all the same."""
    import torch
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import load_file, save_file
    from transformers import AutoModelForImageTextToText

    make_gold(synth_small, tmp_path / "gold", n=4)
    torch.manual_seed(0)
    lora = get_peft_model(AutoModelForImageTextToText.from_pretrained(tiny_model),
                          LoraConfig(r=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False))
    lora.save_pretrained(tmp_path / "adapter")
    weights = load_file(str(tmp_path / "adapter" / "adapter_model.safetensors"))
    save_file({k.replace("_proj.lora_", "_prj.lora_"): v for k, v in weights.items()},
              str(tmp_path / "adapter" / "adapter_model.safetensors"), metadata={"format": "pt"})
    entry = tmp_path / "lora.yaml"
    entry.write_text(f"name: lora\nkind: local\npath: {tiny_model}\nadapter: {tmp_path / 'adapter'}\nbatch_size: 4\n"
                     "decoding: {max_new_tokens: 8}\n")
    common = ["--gold", str(tmp_path / "gold" / "gold.jsonl"), "--out", str(tmp_path / "out"),
              "--cache", str(tmp_path / "c.sqlite")]
    assert main(["infer", "--model", str(entry), *common]) == 2
    line = capsys.readouterr().err.splitlines()[-1]
    assert line.startswith(f"error: model lora: the adapter {tmp_path / 'adapter'} did not load as trained: peft warned: "
                           f"Found missing adapter keys while loading the checkpoint ({len(weights)} keys, e.g. ")
    assert "next-token logits differ by at most" in line and line.endswith("(--adapter-check warn scores it anyway, "
                                                                           "flagged in the report)")
    assert main(["run", "--models", str(entry), *common, "--adapter-check", "warn"]) == 0
    assert "> **WARNING: `lora`'s adapter did not load as trained** (peft: missing adapter keys)" in \
        (tmp_path / "out" / "report.md").read_text()
