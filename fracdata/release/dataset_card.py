"""The released dataset's card: README.md with the Hub's YAML metadata, then what a user needs.

YAML (the Hub's dataset-card keys): `license` (the Hub id of every licence among the released
images; `other` with `license_link: sources.csv` when one has no Hub id), `configs` (one per
variant: its train shards and the shared validation shards), `task_categories`, `size_categories`.
Body: how to load it (datasets, LlamaFactory from the folder and from the Hub), rows per variant
(read, released, withheld), licences, what was left out and why, rows per feature (the build
card's class counts, over the released rows), and the build it came from.
"""

from __future__ import annotations

import yaml

from fracdata.dataset.card import _size_category, _table
from fracdata.dataset.sharegpt import VAL_NAME


def front_matter(report: dict, configs: dict[str, str]) -> dict:
    hub = sorted({v["hub"] for v in report["licences"].values()}) or ["other"]
    front = {"pretty_name": "fracdata fractography dataset", "license": hub}
    if "other" in hub:
        front.update(license_name="per-image", license_link="sources.csv")
    variants = [n for n in configs if n != VAL_NAME]
    first = report["datasets"][variants[0]]["released"]
    front.update({
        "language": ["en"],
        "task_categories": ["image-text-to-text"],
        "tags": ["fractography", "materials-science", "sem", "llamafactory", "sharegpt"],
        "size_categories": [_size_category(first)],
        "configs": [{"config_name": n, **({"default": True} if n == variants[0] else {}),
                     "data_files": [{"split": "train", "path": f"data/{n}/train-*"},
                                    {"split": "validation", "path": f"data/{VAL_NAME}/validation-*"}]}
                    for n in variants],
    })
    return front


def render_card(report: dict, configs: dict[str, str]) -> str:
    variants = [n for n in configs if n != VAL_NAME]
    names = list(report["datasets"])
    b, im = report["build"], report["images"]
    repo = report.get("repo") or "ORG/NAME"
    load = "\n".join([
        "```python",
        "from datasets import load_dataset",
        f"ds = load_dataset(\"{repo}\", \"{variants[0]}\")           # or load_dataset(\"parquet\", data_files=...) on this folder",
        "ds[\"train\"][0][\"images\"][0]                      # a PIL image",
        "```",
        "",
        "LlamaFactory reads `dataset_info.json` here: from this folder with `dataset_dir: <folder>` and "
        f"`dataset: {variants[0]}` (`eval_dataset: {VAL_NAME}`), or from the Hub with `dataset_dir: REMOTE:{repo}` and "
        f"`dataset: {variants[0]}_hub` (`eval_dataset: {VAL_NAME}_hub`; these entries exist when the release was written "
        "with `--repo` or `--push`). The rows are LlamaFactory's sharegpt format: `messages` (the training prompt "
        "and the answer `Features: <taxonomy ids>`) and `images`.",
    ])
    rows = [[n, f"`data/{n}/`", d["read"], d["released"], d["withheld"]] for n, d in report["datasets"].items()]
    lic = [[k, f"`{v['hub']}`", v["images"]] for k, v in report["licences"].items()]
    reasons = ", ".join(f"`{k}` {v}" for k, v in im["rejected"].items()) or "none"
    feats = [[f"`{f}`"] + [c.get(n, 0) for n in names] for f, c in report["features"].items()]
    parts = [
        "---\n" + yaml.safe_dump(front_matter(report, configs), sort_keys=False) + "---",
        "# fracdata fractography dataset",
        f"Fractographs (fracture-surface images) with the taxonomy features each shows, released by "
        f"`fracdata release dataset` from a `fracdata build` (input hash `{b['input_hash']}`; its card sha256 "
        f"`{b['card_sha256']}`; build.json sha256 `{b['build_json_sha256']}`). Taxonomy v{report['taxonomy']['version']} "
        f"(sha256 `{report['taxonomy']['sha256']}`).",
        "## Loading",
        load,
        "## Configurations and splits",
        f"One configuration per training variant (`{'`, `'.join(variants)}`), each with the shared validation split "
        f"`data/{VAL_NAME}/`. The build's split is grouped by source paper, so no paper is on both sides; the "
        "training variants hold rotated copies of their images (`aug`) where the build made them.",
        _table(["dataset", "files", "rows in the build", "rows released", "rows withheld"], rows),
        "## Licences",
        "Every row carries its image's licence and source (`licence`, `doi`, `title`, `journal`, `year`, `figure`, "
        "`panel`, `url`) and an `attribution` line; `sources.csv` lists each source with its licence and images. "
        "Reuse must credit the source as its licence asks.",
        _table(["licence", "Hub id", "images released"], lic),
        "## Withheld images",
        f"{im['read']} images read, {im['released']} released, {im['withheld']} withheld (reasons: {reasons}). An image "
        "whose licence does not allow redistribution (not CC BY, CC BY-SA, CC0 or public domain: ND forbids the "
        "derived images a dataset holds, NC the commercial use it allows), or with no licence recorded, is left out "
        "with every row of it; `rejects.jsonl` names each one and why.",
        "## Rows per feature, dataset and split",
        _table(["feature"] + names, feats),
        "## Provenance",
        "`release.json` holds these counts and the sha256 of every file of this release. Labels come from the build's "
        "inputs (a teacher model's or people's labels, see the build's card); they are not hand-checked gold.",
    ]
    return "\n\n".join(parts) + "\n"
