"""`fracdata release model` and the local adapter check, on a LoRA adapter really trained here.

One module fixture trains the tiny model with the smoke recipe (real LlamaFactory, 6 steps) and
scores base and adapter with `fracbench run`; the tests read the model card back with
huggingface_hub's ModelCard parser, refuse a copy of the adapter whose weight names were changed
so peft applies none of them, and push the card to a local stand-in for the Hub.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fracdata.cli import main as fracdata_main
from fracbench.cli import main as fracbench_main
from tests.support.bench_kit import make_gold
from tests.support.hub_server import HubStub


def _lora_entry(folder: Path, name: str, base: Path, adapter: Path) -> str:
    p = folder / f"{name}.yaml"
    p.write_text(f"name: {name}\nkind: local\npath: {base}\nadapter: {adapter}\nbatch_size: 4\n"
                 "decoding: {max_new_tokens: 8}\n")
    return str(p)


@pytest.fixture(scope="module")
def trained(synth_small, tiny_model, tmp_path_factory):
    from fracdata.dataset import Inputs, build

    tmp = tmp_path_factory.mktemp("release-model")
    build(Inputs(synth_small / "manifest.jsonl", [synth_small / "labels.jsonl"], synth_small / "manual",
                 [synth_small / "gold.jsonl"]), tmp / "ds", log=lambda *a: None)
    run = tmp / "lora"
    assert fracdata_main(["train", "--dataset-dir", str(tmp / "ds"), "--model", str(tiny_model),
                          "--output-dir", str(run)]) == 0
    make_gold(synth_small, tmp / "gold", n=6)
    base = tmp / "base.yaml"
    base.write_text(f"name: tiny-base\nkind: local\npath: {tiny_model}\nbatch_size: 4\ndecoding: {{max_new_tokens: 8}}\n")
    assert fracbench_main(["run", "--models", str(base), _lora_entry(tmp, "tiny-lora", tiny_model, run),
                           "--gold", str(tmp / "gold" / "gold.jsonl"), "--out", str(tmp / "bench"),
                           "--cache", str(tmp / "cache.sqlite")]) == 0
    return tmp, run


@pytest.mark.slow
def test_a_trained_adapter_passes_the_check(trained, capsys):
    tmp, run = trained
    meta = json.loads((tmp / "bench" / "predictions" / "tiny-lora.meta.json").read_text())
    check = meta["adapter_check"]
    assert check["inert"] is False and check["probes"] == 3 and check["max_logit_diff"] > 1e-3
    assert check["base"] == meta["identity"]["path"]
    metrics = json.loads((tmp / "bench" / "metrics.json").read_text())
    assert metrics["provenance"]["models"]["tiny-lora"]["adapter_check"]["inert"] is False
    assert "WARNING" not in (tmp / "bench" / "report.md").read_text()


@pytest.mark.slow
def test_an_adapter_whose_weights_do_not_apply_is_refused(trained, tiny_model, tmp_path, capsys):
    """Renamed LoRA keys: peft 0.18 loads it with only a warning, its B matrices stay zero, and the
    model is the base model; the check sees identical answers and bit-identical logits."""
    from safetensors.torch import load_file, save_file

    tmp, run = trained
    bad = tmp_path / "bad"
    shutil.copytree(run, bad, ignore=shutil.ignore_patterns("checkpoint-*"))
    weights = load_file(str(bad / "adapter_model.safetensors"))
    save_file({k.replace("_proj.lora_", "_prj.lora_"): v for k, v in weights.items()}, str(bad / "adapter_model.safetensors"),
              metadata={"format": "pt"})
    entry = _lora_entry(tmp_path, "tiny-bad", tiny_model, bad)
    common = ["--gold", str(tmp / "gold" / "gold.jsonl"), "--out", str(tmp_path / "out"), "--cache", str(tmp_path / "c.sqlite")]
    capsys.readouterr()
    assert fracbench_main(["infer", "--model", entry, *common]) == 2
    err = capsys.readouterr().err  # transformers' weight-loading bar, then the one error line
    assert "Traceback" not in err and [line for line in err.splitlines() if "error" in line.lower()] == [err.splitlines()[-1]]
    err = err.splitlines()[-1] + "\n"
    assert err.startswith(
        f"error: model tiny-bad: the adapter {bad} changes nothing: 3/3 probe answers identical, next-token logits "
        f"differ by at most 0 (tolerance 1e-05) against the base {tiny_model}; peft warned: Found missing adapter keys "
        f"while loading the checkpoint ({len(weights)} keys, e.g. base_model.model.")
    assert err.endswith("Its weights are not applied (module names that match nothing?); its scores would be the base "
                        "model's (--adapter-check warn scores it anyway, flagged in the report)\n")
    assert not (tmp_path / "out" / "predictions" / "tiny-bad.jsonl").exists()

    assert fracbench_main(["run", "--models", entry, *common, "--adapter-check", "warn"]) == 0
    assert "WARNING: model tiny-bad: the adapter" in capsys.readouterr().out
    report = (tmp_path / "out" / "report.md").read_text()
    assert f"> **WARNING: `tiny-bad`'s adapter changes nothing**: 3/3 probe answers are identical to its base `{tiny_model}` " \
           "and logits differ by at most 0. Its row is the base model's score" in report


@pytest.mark.slow
def test_the_model_card_reads_back_with_the_hubs_parser_and_names_every_source(trained, capsys):
    from huggingface_hub import ModelCard

    tmp, run = trained
    metrics_path = tmp / "bench" / "metrics.json"
    assert fracdata_main(["release", "model", str(run), "--metrics", str(metrics_path), "--licence", "apache-2.0",
                          "--base-model", "Qwen/Qwen3-VL-2B-Instruct", "--name", "tiny-lora"]) == 0
    assert capsys.readouterr().out.splitlines()[-1].startswith(
        f"wrote {run / 'README.md'}: model card of tiny-lora (library peft, base Qwen/Qwen3-VL-2B-Instruct, licence "
        "apache-2.0, 9 fracbench metrics of tiny-lora, ")
    card = ModelCard.load(run / "README.md")
    d = card.data
    assert (d.library_name, d.license, d.base_model, d.pipeline_tag) == ("peft", "apache-2.0", "Qwen/Qwen3-VL-2B-Instruct",
                                                                          "image-text-to-text")
    assert d.to_dict()["base_model_relation"] == "adapter" and "lora" in d.tags
    metrics = json.loads(metrics_path.read_text())
    m = metrics["models"]["tiny-lora"]
    got = {r.metric_name: r for r in d.eval_results}
    assert set(got) == {"micro precision", "micro recall", "micro f1", "macro precision", "macro recall", "macro f1",
                        "exact match", "jaccard", "strict micro precision"}
    for name, r in got.items():
        avg, _, metric = name.removeprefix("strict ").partition(" ")
        block = (m["strict"] if name.startswith("strict") else m)
        v = block[avg.replace("exact", "exact_match")] if name in ("exact match", "jaccard") else block[avg][metric]
        assert r.metric_value == round(v["value"], 4) and r.metric_args["ci95"] == [round(v["ci_low"], 4), round(v["ci_high"], 4)]
        assert r.metric_args["coverage"] == f"{m['coverage']['answered']}/{m['coverage']['n']}"
        assert r.dataset_revision == metrics["provenance"]["gold_sha256"] and r.dataset_split == "test"
    text = card.text
    prov = json.loads((run / "provenance.json").read_text())
    assert f"```\n{prov['command']}\n```" in text  # the recipe's command
    from fracdata.records import sha256_file

    for f in ("provenance.json", "resolved.yaml", "adapter_config.json", "trainer_state.json"):
        assert f"| `{f}` | `{run / f}` | `{sha256_file(run / f)}` |" in text
    assert f"| `metrics.json` | `{metrics_path}` | `{sha256_file(metrics_path)}` |" in text
    mp = m["micro"]["precision"]
    assert (f"| micro precision | {mp['value']:.3f} [{mp['ci_low']:.3f}, {mp['ci_high']:.3f}] | `metrics.json` | "
            "`models.tiny-lora.micro.precision` |") in text
    state = json.loads((run / "trainer_state.json").read_text())
    assert f"| training steps | {state['global_step']} | `trainer_state.json` | `global_step` |" in text
    # every model scored beside it, and the limits of the figures
    assert re.search(r"^\| tiny-base \| \d\.\d{3} \[", text, re.M) and "The scores rest on 6 gold images" in text


@pytest.mark.slow
def test_push_sends_the_model_and_its_card_not_the_checkpoints(trained, tmp_path):
    tmp, run = trained
    env = {k: v for k, v in os.environ.items() if k not in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_TOKEN")}
    with HubStub() as hub:
        proc = subprocess.run([sys.executable, "-m", "fracdata", "release", "model", str(run), "--licence", "apache-2.0",
                               "--out", str(tmp_path / "card.md"), "--push", "me/tiny-lora"], capture_output=True, text=True,
                              env={**env, "HF_TOKEN": "hf_test", "HF_ENDPOINT": hub.url, "HF_HOME": str(tmp_path / "h")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = hub.files[("model", "me/tiny-lora")]
    assert files["README.md"] == (tmp_path / "card.md").read_bytes()  # --out's card, as the repo's README.md
    assert files["adapter_model.safetensors"] == (run / "adapter_model.safetensors").read_bytes()
    assert {"adapter_config.json", "provenance.json", "resolved.yaml", "tokenizer.json"} <= set(files)
    assert not [f for f in files if f.startswith("checkpoint-") or f.endswith(".bin")]


def test_run_folder_and_metrics_problems_are_one_line_errors(tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    assert fracdata_main(["release", "model", str(run)]) == 2
    assert capsys.readouterr().err == f"error: {run}: not a `fracdata train` run folder (no provenance.json)\n"
    (run / "provenance.json").write_text(json.dumps({"model": "org/base", "command": "fracdata train x", "git": "x"}))
    (run / "resolved.yaml").write_text("finetuning_type: full\ntemplate: qwen3_vl_nothink\n")
    assert fracdata_main(["release", "model", str(run)]) == 2
    assert capsys.readouterr().err == f"error: {run}: no weights (*.safetensors): the run has not finished training\n"
    (run / "model.safetensors").write_bytes(b"")
    assert fracdata_main(["release", "model", str(run)]) == 2
    assert capsys.readouterr().err == (f"error: {run / 'provenance.json'}: not a provenance.json written by `fracdata "
                                       "train` (git: Input should be a valid dictionary)\n")
    (run / "provenance.json").write_text(json.dumps({"model": "org/base", "command": "fracdata train x", "dataset": {}}))
    ci = {"value": 0.5, "ci_low": 0.4, "ci_high": 0.6}
    row = {"micro": {"precision": ci, "recall": ci, "f1": ci}, "coverage": {"n": 4, "answered": 4}}
    limited = tmp_path / "metrics.json"
    limited.write_text(json.dumps({"models": {"a": row}, "provenance": {"not_a_score": True, "limit": 5}}))
    assert fracdata_main(["release", "model", str(run), "--metrics", str(limited)]) == 2
    assert capsys.readouterr().err == (f"error: {limited}: a `--limit 5` run, labelled NOT A SCORE: score the whole gold set "
                                       "before putting figures on a model card\n")
    other = tmp_path / "m2.json"
    other.write_text(json.dumps({"models": {"a": row, "b": row}, "provenance": {"models": {"a": {"identity": "x"}}}}))
    assert fracdata_main(["release", "model", str(run), "--metrics", str(other)]) == 2
    assert capsys.readouterr().err == (f"error: {other}: no row scored the checkpoint {run}: name it with --bench-model "
                                       "(one of a, b)\n")
    hostile = tmp_path / "m3.json"
    hostile.write_text(json.dumps({"models": {"a": {**row, "micro": {**row["micro"], "f1": {"value": "high"}}}},
                                   "provenance": {}}))
    assert fracdata_main(["release", "model", str(run), "--metrics", str(hostile), "--bench-model", "a"]) == 2
    assert capsys.readouterr().err == (f"error: {hostile}: not a fracbench metrics.json (models.a.micro.f1.value: Input "
                                       "should be a valid number, unable to parse string as a number)\n")
    assert fracdata_main(["release", "model", str(run), "--bench-model", "a"]) == 2
    assert capsys.readouterr().err == "error: --bench-model goes with --metrics (fracbench's metrics.json)\n"
    # a full fine-tune from a Hub base: library transformers, base_model from provenance, relation finetune
    assert fracdata_main(["release", "model", str(run)]) == 0
    from huggingface_hub import ModelCard

    d = ModelCard.load(run / "README.md").data
    assert (d.library_name, d.base_model, d.license, d.license_name) == ("transformers", "org/base", "other", "unstated")
    assert d.to_dict()["base_model_relation"] == "finetune"
    assert "warning: no licence stated" in capsys.readouterr().out
