"""`fracdata release dataset`: a real build (fracdata synth -> fracdata build) with mixed licences,
released as Parquet: what `datasets` and LlamaFactory read back, what is withheld and why, the
dataset card, the Hub route (`REMOTE:`), and `--push` as far as it can be run offline (a local
stand-in for the Hub's commit API)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from fracdata.cli import main
from fracdata.records import ManifestRecord, Reject, dump_jsonl, read_jsonl
from tests.support.hub_server import HubStub

VARIANTS = ["full", "no_rare", "no_rotation", "mined_only"]
# manifest line k (0-based) -> its licence: most CC0, some CC BY (a URL, as JATS states it), some
# not redistributable
LICENCES = {1: "CC BY-NC-ND 4.0", 2: "https://creativecommons.org/licenses/by/4.0/", 3: None, 4: "All rights reserved"}


@pytest.fixture(scope="module")
def built(synth_small, tmp_path_factory):
    """A build whose manifest mixes licences and whose manual collection has no manifest (no licence)."""
    from fracdata.dataset import Inputs, build

    tmp = tmp_path_factory.mktemp("release")
    synth = tmp / "synth"
    shutil.copytree(synth_small, synth)
    recs = [r for _, r in read_jsonl(synth / "manifest.jsonl", ManifestRecord, "test")]
    for k, r in enumerate(recs):
        if k % 7 in LICENCES:
            r.source.licence = LICENCES[k % 7]
    dump_jsonl(recs, synth / "manifest.jsonl")
    (synth / "manual" / "manifest.jsonl").unlink()
    build(Inputs(synth / "manifest.jsonl", [synth / "labels.jsonl"], synth / "manual", [synth / "gold.jsonl"]),
          tmp / "ds", log=lambda *a: None)
    rows = {n: json.loads((tmp / "ds" / f).read_text()) for n, f in
            {**{v: f"train_{v}.json" for v in VARIANTS}, "val": "val.json"}.items()}
    licence = {r.id: r.source.licence for r in recs}
    withheld = {r["id"] for rs in rows.values() for r in rs
                if r["origin"] == "manual" or licence[r["id"]] not in ("CC0-1.0", LICENCES[2])}
    return tmp, rows, withheld


@pytest.fixture(scope="module")
def released(built):
    tmp, _, _ = built
    out = tmp / "rel"
    lines = []
    from fracdata.release.dataset import release_dataset

    release_dataset(tmp / "ds", out, repo="me/fracdata-synth", log=lines.append)
    return out, lines


def test_withheld_images_are_counted_with_the_reason_and_appear_nowhere(built, released):
    tmp, rows, withheld = built
    out, lines = released
    report = json.loads((out / "release.json").read_text())
    ids = {r["id"] for rs in rows.values() for r in rs}
    assert report["images"] == {"read": len(ids), "released": len(ids) - len(withheld), "withheld": len(withheld),
                                "rejected": {"licence_not_allowed": len(withheld)}}
    assert 0 < len(withheld) < len(ids)
    for name, rs in rows.items():
        kept = [r for r in rs if r["id"] not in withheld]
        assert report["datasets"][name] == {"read": len(rs), "released": len(kept), "withheld": len(rs) - len(kept)}
        assert f"  {name:12s} rows read {len(rs):6d}  released {len(kept):6d}  withheld {len(rs) - len(kept):5d}" in lines
    assert lines[5] == (f"  images       read {len(ids):6d}  released {len(ids) - len(withheld):6d}  withheld "
                        f"{len(withheld):5d} (licence_not_allowed {len(withheld)})")
    rejects = [r for _, r in read_jsonl(out / "rejects.jsonl", Reject, "test")]
    assert {r.id for r in rejects} == withheld and {r.reason for r in rejects} == {"licence_not_allowed"}
    details = Counter(r.detail.split(";")[0] for r in rejects)
    assert details["licence CC BY-NC-ND 4.0 does not allow redistribution (ND forbids the derived images a dataset "
                   "holds (cut panels, resized, rotated) and NC forbids the commercial use a public dataset allows)"] > 0
    assert details["licence 'All rights reserved' is not one fracdata recognises"] > 0
    assert details["no licence recorded"] > 0
    manual = [r for r in rejects if r.detail.startswith("no licence recorded for this image (the manual collection")]
    assert manual and all(r.file == str(tmp / "synth" / "manual") for r in manual)
    assert lines[-1].startswith(f"wrote {out}: 5 datasets as 5 Parquet files (") and \
        f"rejects.jsonl ({len(withheld)} rejects), release.json" in lines[-1]


def test_every_split_loads_with_datasets_and_its_images_decode_to_their_ids(built, released, tmp_path):
    import datasets

    from fracdata.images import pixel_id

    _, rows, withheld = built
    out, _ = released
    info = json.loads((out / "dataset_info.json").read_text())
    for name, rs in rows.items():
        split = "validation" if name == "val" else "train"
        files = sorted(str(p) for p in (out / info[name]["file_name"]).glob(f"{split}-*.parquet"))
        ds = datasets.load_dataset("parquet", data_files=files, split="train", cache_dir=str(tmp_path / name))
        kept = [r for r in rs if r["id"] not in withheld]
        assert ds.num_rows == len(kept)
        assert ds.features["images"].feature.__class__.__name__ == "Image"
        for got, want in zip(ds, kept, strict=True):
            assert [pixel_id(im) for im in got["images"]] == [Path(p).stem for p in want["images"]]
            assert got["messages"] == want["messages"] and (got["id"], got["aug"]) == (want["id"], want["aug"])
            assert got["licence"] in ("CC0 1.0", "CC BY 4.0") and got["doi"] and got["doi"] in got["attribution"]


def test_the_folder_loads_by_its_card_configs_and_the_card_parses(built, released, tmp_path):
    import datasets
    from huggingface_hub import DatasetCard

    _, rows, withheld = built
    out, _ = released
    card = DatasetCard.load(out / "README.md")
    assert card.data.license == ["cc-by-4.0", "cc0-1.0"]
    assert card.data.task_categories == ["image-text-to-text"]
    assert [c["config_name"] for c in card.data.configs] == VARIANTS and card.data.configs[0]["default"] is True
    dd = datasets.load_dataset(str(out), "no_rare", cache_dir=str(tmp_path / "hf"))  # what the Hub's loader does
    assert dd["train"].num_rows == sum(r["id"] not in withheld for r in rows["no_rare"])
    assert dd["validation"].num_rows == sum(r["id"] not in withheld for r in rows["val"])
    report = json.loads((out / "release.json").read_text())
    # the class counts: one table row per feature, one column per dataset
    for fid, counts in report["features"].items():
        assert f"| `{fid}` | " + " | ".join(str(counts[n]) for n in rows) + " |" in card.text
    assert sum(report["features"].get("(none)", {}).values()) + sum(
        1 for rs in rows.values() for r in rs if r["id"] not in withheld) > 0


def test_dataset_info_serves_the_folder_and_the_hub(released, tmp_path, monkeypatch):
    """`file_name` entries for the folder; `<name>_hub` entries for `dataset_dir: REMOTE:<repo>`,
    read through LlamaFactory's own parser from a Hub cache holding the repo's dataset_info.json."""
    from huggingface_hub import constants
    from llamafactory.data.parser import get_dataset_list

    out, _ = released
    info = json.loads((out / "dataset_info.json").read_text())
    assert sorted(info) == sorted(VARIANTS + ["val"] + [f"{n}_hub" for n in VARIANTS + ["val"]])
    local = get_dataset_list(["full", "val"], str(out))
    assert [(a.load_from, a.dataset_name, a.formatting, a.images) for a in local] == \
        [("file", "data/full", "sharegpt", "images"), ("file", "data/val", "sharegpt", "images")]
    snap = tmp_path / "hub" / "datasets--me--fracdata-synth" / "snapshots" / ("0" * 40)
    snap.mkdir(parents=True)
    shutil.copy(out / "dataset_info.json", snap / "dataset_info.json")
    (tmp_path / "hub" / "datasets--me--fracdata-synth" / "refs").mkdir()
    (tmp_path / "hub" / "datasets--me--fracdata-synth" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    remote = get_dataset_list(["full_hub", "val_hub"], "REMOTE:me/fracdata-synth")
    assert [(a.load_from, a.dataset_name, a.subset, a.split) for a in remote] == \
        [("hf_hub", "me/fracdata-synth", "full", "train"), ("hf_hub", "me/fracdata-synth", "full", "validation")]


@pytest.mark.slow
def test_llamafactory_loads_every_released_row(built, released, tiny_model, tmp_path):
    """LlamaFactory's own get_dataset path over the Parquet copy: 0 rows skipped, every image used."""
    from llamafactory.data import get_dataset, get_template_and_fix_tokenizer
    from llamafactory.hparams import get_train_args
    from llamafactory.model import load_tokenizer

    _, rows, withheld = built
    out, _ = released
    model_args, data_args, training_args, _, _ = get_train_args(dict(
        model_name_or_path=str(tiny_model), stage="sft", do_train=True, finetuning_type="full", dataset="full",
        eval_dataset="val", dataset_dir=str(out), template="qwen3_vl_nothink", cutoff_len=1024,
        output_dir=str(tmp_path / "run"), cache_dir=str(tmp_path / "cache"), overwrite_cache=True, report_to="none",
        preprocessing_num_workers=1))
    tokenizer_module = load_tokenizer(model_args)
    template = get_template_and_fix_tokenizer(tokenizer_module["tokenizer"], data_args)
    module = get_dataset(template, model_args, data_args, training_args, stage="sft", **tokenizer_module)
    pad = tokenizer_module["tokenizer"].convert_tokens_to_ids("<|image_pad|>")
    for split, name in (("train_dataset", "full"), ("eval_dataset", "val")):
        data = module[split]
        assert len(data) == sum(r["id"] not in withheld for r in rows[name]) > 0
        assert all(pad in ids for ids in data["input_ids"])  # the image reached the processor
        assert all(sum(t != -100 for t in lab) > 0 for lab in data["labels"])


def test_bad_inputs_are_one_line_errors(built, tmp_path, capsys):
    tmp, _, _ = built
    assert main(["release", "dataset", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: not a fracdata build (no build.json); build it with `fracdata build`\n"
    assert main(["release", "dataset", str(tmp / "ds"), "--variants", "full,rotated", "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == "error: --variants 'rotated': not a dataset variant (one of full, no_rare, no_rotation, mined_only)\n"
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x.txt").write_text("mine")
    assert main(["release", "dataset", str(tmp / "ds"), "--out", str(tmp_path / "taken")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'taken'}: exists and is not a fracdata release (no release.json); "
                                       "remove it or choose another --out\n")
    moved = tmp_path / "manifest.jsonl"
    moved.write_text((tmp / "synth" / "manifest.jsonl").read_text() + "\n")
    want = json.loads((tmp / "ds" / "build.json").read_text())["inputs"][0]["sha256"]
    assert main(["release", "dataset", str(tmp / "ds"), "--manifest", str(moved), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err == (f"error: {moved}: not the manifest this dataset was built from (sha256 differs "
                                       f"from the {want[:12]}… in {tmp / 'ds' / 'build.json'}); pass --manifest with the "
                                       "original, or rebuild\n")
    assert not (tmp_path / "o").exists() and (tmp_path / "taken" / "x.txt").read_text() == "mine"


def test_import_and_help_need_no_datasets():
    code = ("import sys; import fracdata.release, fracdata.release.dataset, fracdata.release.model; "
            "print([m for m in ('datasets', 'huggingface_hub', 'torch', 'pyarrow') if m in sys.modules])")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def _cli(args: list[str], **env) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_ENDPOINT")}
    return subprocess.run([sys.executable, "-m", "fracdata", *args], capture_output=True, text=True,
                          env={**base, **env}, timeout=300)


def test_push_without_a_token_or_offline_is_refused_before_any_work(built, tmp_path):
    tmp, _, _ = built
    args = ["release", "dataset", str(tmp / "ds"), "--out", str(tmp_path / "o"), "--push", "me/frac"]
    proc = _cli(args, HF_HOME=str(tmp_path / "hf-home"))  # no HF_TOKEN, no stored login
    assert (proc.returncode, proc.stdout) == (2, "")
    assert proc.stderr == ("error: --push me/frac: no Hugging Face token: set HF_TOKEN or run `hf auth login` (a token "
                           "with write access); nothing was written or uploaded\n")
    proc = _cli(args, HF_HOME=str(tmp_path / "hf-home"), HF_TOKEN="hf_test", HF_HUB_OFFLINE="1")
    assert (proc.returncode, proc.stderr) == (2, "error: --push me/frac: offline mode is on (HF_HUB_OFFLINE or "
                                                 "TRANSFORMERS_OFFLINE is set), so huggingface_hub makes no request: unset "
                                                 "it to upload; nothing was written or uploaded\n")
    assert not (tmp_path / "o").exists()


def test_push_commits_every_file_with_the_users_token(built, tmp_path):
    """Against a local stand-in for the Hub's commit API (HF_ENDPOINT): the real huggingface_hub client."""
    tmp, _, _ = built
    out = tmp_path / "pushed"
    with HubStub() as hub:
        proc = _cli(["release", "dataset", str(tmp / "ds"), "--out", str(out), "--push", "me/frac", "--private"],
                    HF_HOME=str(tmp_path / "hf-home"), HF_TOKEN="hf_test", HF_ENDPOINT=hub.url)
    assert proc.returncode == 0, proc.stderr[-2000:]
    files = {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}
    assert hub.files[("dataset", "me/frac")] == files and hub.repos == {("dataset", "me/frac"): {"private": True}}
    assert set(hub.tokens) == {"hf_test"} and hub.validated == [files["README.md"].decode()]
    info = json.loads(files["dataset_info.json"])
    assert info["full_hub"]["hf_hub_url"] == "me/frac"  # --push names the repo in dataset_info.json
    size = sum(map(len, files.values())) / 2**20
    assert proc.stdout.splitlines()[-1] == (f"pushed {len(files)} files ({size:.1f} MB) to the dataset repo me/frac: "
                                            f"{hub.url}/datasets/me/frac/commit/{hub.commits[0][2]}")
