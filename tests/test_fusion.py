"""The fused patch embedding (fracdata/train/fusion.py): same model, same outputs, one matmul.

transformers applies the fusion process-wide, so every fused/unfused comparison loads each side in
its own subprocess (as a user's two runs would).
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fracdata.errors import FracdataError
from fracdata.train import fusion

# One process: load the tiny model fused or not, run three images through it (LlamaFactory's resize
# and chat markup, the model's own processor), save the logits of the whole prompt and the greedy
# answers, and say which patch-embedding class really loaded.
PROBE = r"""
import json, sys
from pathlib import Path
import numpy as np, torch
from PIL import Image
from transformers import AutoProcessor
from fracdata.inference.local import LocalModel
from fracdata.answer import render_prompt
from fracdata.train.qwen import chat_text, lf_preprocess

model_dir, fused, out = Path(sys.argv[1]), sys.argv[2] == "1", sys.argv[3]
adapter = Path(sys.argv[4]) if len(sys.argv) > 4 else None
rng = np.random.default_rng(0)
images = [Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)) for h, w in ((96, 128), (128, 128), (200, 160))]
m = LocalModel(model_dir, adapter, fused_patch_embed=fused, max_new_tokens=8)
prompt = render_prompt()
enc = m.processor(text=[chat_text(prompt)], images=[lf_preprocess(images[0], *m.pixels)], return_tensors="pt")
with torch.inference_mode():
    logits = m.model(**enc).logits[0].float().numpy()
np.save(out + ".npy", logits)
json.dump({"fused": m.fused, "answers": [a.raw for a in m.generate(images, prompt)],
           "embed": next(type(x).__name__ for n, x in m.model.named_modules() if n.endswith("patch_embed"))},
          open(out + ".json", "w"))
"""


def _probe(model_dir: Path, fused: bool, out: Path, adapter: Path | None = None) -> tuple[np.ndarray, dict]:
    extra = [str(adapter)] if adapter else []
    proc = subprocess.run([sys.executable, "-c", PROBE, str(model_dir), "1" if fused else "0", str(out), *extra],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return np.load(str(out) + ".npy"), json.loads(Path(str(out) + ".json").read_text())


@pytest.mark.slow  # two processes, each importing torch and transformers and generating: ~30 s idle
def test_fused_and_conv3d_patch_embedding_give_the_same_logits_and_answers(tiny_model, tmp_path):
    fused_logits, fused = _probe(tiny_model, True, tmp_path / "fused")
    plain_logits, plain = _probe(tiny_model, False, tmp_path / "plain")
    assert (fused["embed"], plain["embed"]) == ("FusedQwen3VLVisionPatchEmbed", "Qwen3VLVisionPatchEmbed")
    assert (fused["fused"], plain["fused"]) == (True, False)
    assert fused_logits.shape == plain_logits.shape and fused_logits.shape[0] > 20
    # fp32: the Linear sums the same 1,536 products in another order; measured 1e-6 scale
    assert np.abs(fused_logits - plain_logits).max() < 1e-4
    assert fused["answers"] == plain["answers"]


@pytest.mark.slow  # two LoRA trainings (real LlamaFactory, 6 steps each) and four probe processes: ~3 min idle
def test_an_adapter_trained_fused_answers_the_same_without_it_and_the_reverse(synth_dataset, tiny_model, tmp_path):
    from fracdata.cli import main

    runs = {}
    for fused in (True, False):
        out = tmp_path / ("trained-fused" if fused else "trained-conv3d")
        argv = ["train", "--dataset-dir", str(synth_dataset), "--model", str(tiny_model), "--output-dir", str(out)]
        assert main(argv + ([] if fused else ["--no-fused-patch-embed"])) == 0
        runs[fused] = out
    model = str(Path(tiny_model).resolve())
    # the tiny model's config.json names no fusion: the fused run loads a view, the other the model itself
    assert json.loads((runs[True] / "provenance.json").read_text())["patch_embed"] == {
        "fused": True, "model": model, "loaded_from": str(runs[True].resolve() / "model-view")}
    assert json.loads((runs[False] / "provenance.json").read_text())["patch_embed"] == {
        "fused": False, "model": model, "loaded_from": model}
    for trained, out in runs.items():
        assert json.loads((out / "adapter_config.json").read_text())["base_model_name_or_path"] == model
        fused_logits, fused = _probe(tiny_model, True, tmp_path / f"{out.name}-fused", adapter=out)
        plain_logits, plain = _probe(tiny_model, False, tmp_path / f"{out.name}-conv3d", adapter=out)
        assert (fused["fused"], plain["fused"]) == (True, False)
        assert fused["answers"] == plain["answers"], out.name
        assert np.abs(fused_logits - plain_logits).max() < 1e-4, out.name


TWICE = r"""
import sys
from fracdata.errors import FracdataError
from fracdata.inference.local import LocalModel
a = LocalModel(sys.argv[1], fused_patch_embed=True, name="model a")
b = LocalModel(sys.argv[1], fused_patch_embed=True, name="model b")  # transformers alone would raise here
print("fused:", a.fused, b.fused)
import hashlib
from pathlib import Path
from fracdata.train.tiny_model import build_tiny_model
built = build_tiny_model(Path(sys.argv[2]), seed=0)  # built after the fusion is registered process-wide
print("sha256:", hashlib.sha256((built / "model.safetensors").read_bytes()).hexdigest())
try:
    LocalModel(sys.argv[1], fused_patch_embed=False, name="model c")
except FracdataError as e:
    print("refused:", e)
"""


def test_a_process_loads_fused_models_twice_and_refuses_an_unfused_one_after(tiny_model, tmp_path):
    proc = subprocess.run([sys.executable, "-c", TWICE, str(tiny_model), str(tmp_path / "built")], capture_output=True,
                          text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    said = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if line.split(": ", 1)[0] in
                ("fused", "sha256", "refused"))  # deepspeed may log a line of its own on stdout
    assert said["fused"] == "True True"
    # fracdata tiny-model writes the same bytes for seed 0 in a process that already fused
    assert said["sha256"] == hashlib.sha256((Path(tiny_model) / "model.safetensors").read_bytes()).hexdigest()
    assert said["refused"] == ("model c: this process already loaded a qwen3_vl model with the fused patch "
                         "embedding (transformers applies it process-wide): load the unfused one in its own process, "
                         "or set fused_patch_embed: true")


def test_model_view_adds_or_removes_the_fusion_and_links_everything_else(tiny_model, tmp_path):
    assert fusion.config_fused(tiny_model) is None
    view = fusion.model_view(tiny_model, tmp_path / "view", fused=True)
    assert view == tmp_path / "view"
    assert json.loads((view / "config.json").read_text())["fusion_config"] == {"patch_embeddings": True}
    others = sorted(p.name for p in Path(tiny_model).iterdir() if p.name != "config.json")
    assert sorted(p.name for p in view.iterdir() if p.is_symlink()) == others
    assert all((view / n).resolve() == (Path(tiny_model) / n).resolve() for n in others)
    assert fusion.config_fused(view) is True
    # a folder that already says what is asked is used as it is; the reverse view drops the key
    assert fusion.model_view(view, tmp_path / "again", fused=True) == view.resolve()
    back = fusion.model_view(view, tmp_path / "back", fused=False)
    assert "fusion_config" not in json.loads((back / "config.json").read_text())
    assert not (tmp_path / "again").exists()


def test_model_view_of_a_folder_without_a_config_is_one_line(tmp_path):
    with pytest.raises(FracdataError, match=r"config.json: cannot read the model's config"):
        fusion.model_view(tmp_path, tmp_path / "view", fused=True)


def test_a_model_entry_turns_the_fusion_off_only_for_local_models(tmp_path):
    from fracdata.inference.entry import load_model

    p = tmp_path / "m.yaml"
    p.write_text("kind: local\npath: /x\nfused_patch_embed: false\n")
    assert load_model(str(p)).fused_patch_embed is False
    p.write_text("kind: openai-compatible\nbase_url: http://h/v1\nmodel: m\nfused_patch_embed: false\n")
    with pytest.raises(FracdataError, match=r"\['fused_patch_embed'\] do not apply to kind 'openai-compatible'"):
        load_model(str(p))
