"""`fracdata build` end to end on the synthetic corpus: layout, variants, split, determinism,
"nothing changed", a SIGKILLed build, and LlamaFactory's own loader reading every row."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.support.buildkit import read_rows, tree_bytes
from fracdata.dataset.config import BuildConfig, Inputs
from fracdata.dataset.pipeline import build
from fracdata.cli import main
from fracdata.dataset.sharegpt import dataset_info

FILES = {"full": "train_full.json", "no_rare": "train_no_rare.json", "no_rotation": "train_no_rotation.json",
         "mined_only": "train_mined_only.json", "val": "val.json"}


def synth_inputs(root: Path) -> Inputs:
    return Inputs(root / "manifest.jsonl", [root / "labels.jsonl"], root / "manual", [root / "gold.jsonl"])


def synth_argv(root: Path, out: Path) -> list[str]:
    return ["build", "--manifest", str(root / "manifest.jsonl"), "--labels", str(root / "labels.jsonl"),
            "--manual", str(root / "manual"), "--gold", str(root / "gold.jsonl"), "--out", str(out), "--seed", "0"]


@pytest.fixture(scope="module")
def built(synth_small, tmp_path_factory):
    out = tmp_path_factory.mktemp("built") / "ds"
    lines: list[str] = []
    build(synth_inputs(synth_small), out, BuildConfig(), workers=2, log=lines.append)
    return out, lines


def test_layout_variants_and_split(built, synth_small):
    out, lines = built
    summary = json.loads((out / "build.json").read_text())
    rows = {name: read_rows(out / f) for name, f in FILES.items()}
    assert summary["rows"] == {name: len(r) for name, r in rows.items()}
    assert json.loads((out / "dataset_info.json").read_text()) == dataset_info()
    assert set(dataset_info()) == set(FILES) and all(dataset_info()[n]["file_name"] == f for n, f in FILES.items())
    # nothing lost: every record read is kept or rejected with a reason
    for name, s in summary["streams"].items():
        assert s["read"] == s["kept"] + sum(s["rejected"].values()), name
    assert summary["streams"]["mined"]["read"] == 120 and summary["streams"]["manual"]["read"] == 12
    assert summary["streams"]["gold"] == {"read": 30, "kept": 30, "rejected": {}}
    # variants: full = (mined + manual) x 4, no_rare drops manual, no_rotation drops rotated copies
    train = [r for r in rows["full"] if r["aug"] == "none"]
    mined = [r for r in train if r["origin"] == "mined"]
    assert len(rows["full"]) == 4 * len(train) and len(rows["no_rare"]) == 4 * len(mined)
    assert rows["no_rotation"] == train and rows["mined_only"] == mined
    assert [r["aug"] for r in rows["full"][:4]] == ["none", "rot90", "rot180", "rot270"]
    assert {r["aug"] for r in rows["val"]} == {"none"}
    assert len(train) + len(rows["val"]) == summary["streams"]["mined"]["kept"] + summary["streams"]["manual"]["kept"]
    # grouped by paper: no DOI on both sides; the rare feature (fish_eye) on both sides
    doi = {}
    for manifest in (synth_small / "manifest.jsonl", synth_small / "manual" / "manifest.jsonl"):
        for line in manifest.read_text().splitlines():
            rec = json.loads(line)
            doi[rec["id"]] = rec["source"]["doi"]
    assert not {doi[r["id"]] for r in train} & {doi[r["id"]] for r in rows["val"]}
    assert all("fish_eye" in r["messages"][1]["content"] for r in rows["full"] if r["origin"] == "manual")
    assert any("fish_eye" in r["messages"][1]["content"] for r in rows["val"])
    assert any("fish_eye" in r["messages"][1]["content"] for r in train)
    # content-addressed images: exactly the referenced ones, each named by its own sha256
    referenced = {p for r in rows["full"] + rows["val"] for p in r["images"]}
    assert {f"images/{p.name}" for p in (out / "images").iterdir()} == referenced
    assert summary["images"] == len(referenced)
    # the card: Hugging Face front matter with one config per variant, and the counts
    card = (out / "README.md").read_text()
    front = yaml.safe_load(card.split("---\n")[1])
    assert [c["config_name"] for c in front["configs"]] == ["full", "no_rare", "no_rotation", "mined_only"]
    assert f"input hash `{summary['input_hash']}`" in card
    assert f"| mined | 120 | {summary['streams']['mined']['kept']} |" in card
    # the corpus saves 4 pictures twice, as PNG and JPEG: each JPEG is a near copy (and its label goes with it)
    rejects = {r["id"]: r for r in map(json.loads, (out / "rejects.jsonl").read_text().splitlines())
               if r["reason"] == "near_duplicate"}
    panels: dict[tuple, list[str]] = {}
    for rec in map(json.loads, (synth_small / "manifest.jsonl").read_text().splitlines()):
        panels.setdefault((rec["source"]["doi"], rec["source"]["figure"], rec["source"]["panel"]), []).append(rec["id"])
    copies = [ids for ids in panels.values() if len(ids) == 2]
    assert len(copies) == 4 and summary["streams"]["mined"]["rejected"] == {"near_duplicate": 4}
    for a, b in copies:  # one of each pair goes (the larger id), as a near copy of the other
        drop, keep = max(a, b), min(a, b)
        assert drop in rejects and keep not in rejects and f"near copy of {keep} " in rejects[drop]["detail"]
    assert lines[-1] == (f"wrote {out}: 5 dataset files + dataset_info.json, {summary['images']} images in images/, "
                         f"rejects.jsonl (8 rejects), README.md, build.json")


def test_deterministic_and_a_second_run_does_nothing(built, synth_small, tmp_path, capsys):
    out, _ = built
    other = tmp_path / "again"
    build(synth_inputs(synth_small), other, BuildConfig(), workers=1, log=lambda s: None)  # 1 worker, not 2
    assert tree_bytes(other) == tree_bytes(out)  # every file, images and build.json included
    stamp = (out / "build.json").stat().st_mtime_ns
    assert main(synth_argv(synth_small, out)) == 0
    h = json.loads((out / "build.json").read_text())["input_hash"]
    assert capsys.readouterr().out == (f"up to date: {out} already holds this build (input hash {h[:12]}); "
                                       f"nothing to do (--force rebuilds)\n")
    assert (out / "build.json").stat().st_mtime_ns == stamp
    # a changed config is a changed build
    assert main(synth_argv(synth_small, other) + ["--seed", "1"]) == 0
    assert "up to date" not in capsys.readouterr().out
    assert read_rows(other / "val.json") != read_rows(out / "val.json")


def test_killed_build_leaves_the_old_output_intact(synth_small, tmp_path):
    out = tmp_path / "ds"
    build(synth_inputs(synth_small), out, BuildConfig(), workers=2, log=lambda s: None)
    before = tree_bytes(out)
    cmd = [sys.executable, "-m", "fracdata", *synth_argv(synth_small, out), "--force", "--workers", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:  # kill once the new build has written images
            if any(len(list((t / "images").glob("*.png"))) >= 10 for t in tmp_path.glob(".ds.tmp-*") if (t / "images").is_dir()):
                break
            assert proc.poll() is None, "the build finished before it could be killed"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the build and its worker processes, as a crash would
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert tree_bytes(out) == before
    (stale,) = tmp_path.glob(".ds.tmp-*")
    lines: list[str] = []
    build(synth_inputs(synth_small), out, BuildConfig(), workers=2, log=lines.append)
    assert lines[0] == f"removed {stale} (left by a killed build)"
    assert lines[1].startswith(f"up to date: {out} already holds this build")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ds.lock", "ds"]


@pytest.mark.slow
def test_llamafactory_loads_every_row_of_full(built, tiny_model, tmp_path):
    """LlamaFactory's own get_dataset path with the tiny Qwen3-VL processor: 0 rows skipped."""
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    out, _ = built
    n_rows = len(read_rows(out / "train_full.json"))
    model_args, data_args, training_args, _, _ = get_train_args(dict(
        model_name_or_path=str(tiny_model), stage="sft", do_train=True, finetuning_type="full", dataset="full",
        dataset_dir=str(out), template="qwen3_vl_nothink", cutoff_len=1024, output_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"), overwrite_cache=True, report_to="none"))
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    module = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
    assert len(module["train_dataset"]) == n_rows
    assert all(sum(1 for t in ex if t == -100) < len(ex) for ex in module["train_dataset"]["labels"][:5])

    import datasets

    for f in FILES.values():
        ds = datasets.load_dataset("json", data_files=str(out / f), split="train", cache_dir=str(tmp_path / "hf"))
        assert ds.num_rows == len(read_rows(out / f)) and {"messages", "images", "id"} <= set(ds.column_names)
