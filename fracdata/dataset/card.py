"""The build's account of itself: `build.json` (machine-readable), `README.md` (dataset card
with Hugging Face front matter) and the summary printed at the end of `fracdata build`.

Nothing here holds a date, a duration or the temp folder's name, so two builds of the same
inputs write byte-identical files.
"""

from __future__ import annotations

import json
from pathlib import Path

import yaml

from fracdata.records import sha256_file
from fracdata.dataset.sharegpt import VAL_FILE, VAL_NAME, VARIANTS


def _size_category(n: int) -> str:
    for limit, name in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return name
    return "n>1M"


def _table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def render_card(s: dict) -> str:
    front = {
        "pretty_name": "fracdata fractography dataset",
        "license": "other",  # per-image licences differ; see "Licences"
        "language": ["en"],
        "task_categories": ["image-text-to-text"],
        "tags": ["fractography", "materials-science", "sem", "llamafactory"],
        "size_categories": [_size_category(s["rows"]["full"])],
        "configs": [{"config_name": name, "data_files": [{"split": "train", "path": file}, {"split": "validation", "path": VAL_FILE}]}
                    for name, (file, _, _) in VARIANTS.items()],
    }
    cfg = s["config"]
    n_manual = s["streams"]["manual"]["kept"]  # a variant "with" manual images has none when none were kept
    variants = [[name, f"`{file}`", s["rows"][name], (f"yes ({n_manual})" if n_manual else "none kept") if manual else "no",
                 "yes" if rot else "no"] for name, (file, manual, rot) in VARIANTS.items()]
    variants.append([VAL_NAME, f"`{VAL_FILE}`", s["rows"][VAL_NAME], "as split", "no"])
    names = list(VARIANTS) + [VAL_NAME]
    features = [[f"`{f}`"] + [c[n] for n in names] for f, c in s["features"].items()]
    streams = [[k, v["read"], v["kept"], sum(v["rejected"].values()),
                ", ".join(f"{r} {n}" for r, n in v["rejected"].items()) or "-"] for k, v in s["streams"].items()]
    inputs = [[i["role"], f"`{i['path']}`", i.get("sha256", "-"), i.get("files", "-"), i.get("files_sha256", "-")] for i in s["inputs"]]
    sp = s["split"]
    parts = [
        "---\n" + yaml.safe_dump(front, sort_keys=False) + "---",
        "# fracdata fractography dataset",
        "Built by `fracdata build` (fracdata {fracdata}, code sha256 `{code_sha256}`) from the inputs below; "
        "input hash `{h}`. Each row is one fractograph and the answer `Features: <taxonomy ids>` "
        "(fracdata taxonomy v{tv}, sha256 `{ts}`; prompt/answer templates sha256 `{tt}`).".format(
            h=s["input_hash"], tv=cfg["taxonomy_version"], ts=cfg["taxonomy_sha256"], tt=cfg["template_sha256"], **cfg),
        "## Datasets (`dataset_info.json`, LlamaFactory sharegpt)",
        _table(["dataset", "file", "rows", "manual images", "rotations"], variants),
        f"Split grouped by source paper, seed {cfg['seed']}: train {sp['train']['images']} images from "
        f"{sp['train']['groups']} papers, validation {sp['val']['images']} images from {sp['val']['groups']} papers. "
        f"Rotations {cfg['rotations'] or 'none'} (degrees counter-clockwise) on training images only. "
        f"{s['images']} content-addressed PNGs in `images/`.",
        _moved_text(sp),
        _gold_text(s),
        "## Rows per feature, dataset and split",
        _table(["feature"] + names, features),
        "## Records read, kept and rejected (`rejects.jsonl`)",
        _table(["input", "read", "kept", "rejected", "rejects per reason"], streams),
        "## Licences (kept images)",
        _table(["licence", "images"], [[k, v] for k, v in s["licences"].items()]),
        "## Inputs",
        _table(["role", "path", "sha256", "image files", "image files sha256"], inputs),
        "## Build config",
        "```yaml\n" + yaml.safe_dump({k: v for k, v in cfg.items()}, sort_keys=True) + "```",
    ]
    return "\n\n".join(parts) + "\n"


def _gold_text(s: dict) -> str:
    g, n = s["gold"], s["negatives"]
    if g["images"]:
        weak, used = g["weak"], sum(bool(w["waived"]) for w in g["waivers"])  # a waiver may match nothing
        gold = (f"Gold guard: {g['images']} gold images from {g['papers']} papers were checked against every training "
                f"and validation candidate (copies under rotations/flips; shared parents; crops, tiles and scaled crops "
                f"either way round, data bars and lettering left out; "
                f"{f'none found but the {used} pair(s) waived below' if used else 'none found'}). "
                f"{g['gold_paper_removed']} training images from gold papers were removed (`gold_paper`). ")
        gold += (f"The crop check covers {g['images'] - len(weak)} of the {g['images']} gold images; {len(weak)} are weakly "
                 "guarded (a quarter crop of each would not be found: smooth, featureless or periodic specimen; only "
                 "copies and shared parents of them are caught): " + ", ".join(f"`{i}`" for i in weak) + "."
                 if weak else f"The crop check covers all {g['images']} gold images (a quarter crop of each is found).")
        gold += _waiver_text(g["waivers"])
    else:
        gold = "No gold benchmark was given: nothing was checked for leaks."
    if n["keep_negatives"]:
        neg = (f"{n['kept']} images labelled 'not a fracture surface' are kept as `Features: none` rows "
               "(`--keep-negatives`).")
    else:
        neg = (f"{n['rejected']} images labelled 'not a fracture surface' were rejected (`not_fractograph`); "
               "`--keep-negatives` would keep them as `Features: none` rows.")
    return gold + " " + neg


def _waiver_text(ws: list[dict]) -> str:
    if not ws:
        return ""
    rows = [[f"`{w['gold']}`", f"`{w['train']}`", w["reason"], w["who"], f"`{w['where']}`",
             "; ".join(w["waived"]) or "**matched nothing**"] for w in ws]
    return (f"\n\n### Waivers ({len(ws)}; {sum(not w['waived'] for w in ws)} matched nothing)\n\n"
            + _table(["gold", "training", "reason", "who", "file:line", "what the guard found"], rows))


def _moved_text(sp: dict) -> str:
    moved = sp.get("moved_to_train", [])
    if not moved:
        return ("No validation image shares a region of specimen with a training image (the gold guard's matcher, "
                "after grouping by paper and parent).")
    rows = [[f"`{m['image']}`", f"`{m['other']}`" if m["other"] else "(its paper or parent)",
             m["inliers"] or "-", m["scale"] or "-", m["correlation"] or "-"] for m in moved]
    return (f"{len(moved)} images planned for validation share a region of specimen with training images (or sit "
            "in a group that does) and were moved to training, so no field straddles the split:\n\n"
            + _table(["moved image", "shares a region with", "matching keypoints", "scale", "pixel correlation"], rows))


def write_card_and_summary(folder: Path, summary: dict) -> None:
    """README.md first (its hash goes into build.json), then build.json."""
    (folder / "README.md").write_text(render_card(summary), encoding="utf-8")
    summary["files"]["README.md"] = sha256_file(folder / "README.md")
    (folder / "build.json").write_text(json.dumps(summary, ensure_ascii=False, indent=2) + "\n", encoding="utf-8")


def print_summary(s: dict, out: Path, log=print) -> None:
    for name, v in s["streams"].items():
        if not v["read"]:
            continue
        reasons = ", ".join(f"{r} {n}" for r, n in v["rejected"].items())
        log(f"  {name:7s} read {v['read']:6d}  kept {v['kept']:6d}  rejected {sum(v['rejected'].values()):5d}"
            + (f" ({reasons})" if reasons else ""))
    if s["unknown_feature_names"]:
        log("  unknown feature names: " + ", ".join(f"{k!r} {n}" for k, n in s["unknown_feature_names"].items()))
    sp = s["split"]
    log(f"  split   train {sp['train']['images']} images ({sp['train']['groups']} papers), "
        f"val {sp['val']['images']} images ({sp['val']['groups']} papers), seed {s['config']['seed']}"
        + (f"; {len(sp['moved_to_train'])} moved to train (they share a region with training images)"
           if sp.get("moved_to_train") else ""))
    log("  rows    " + ", ".join(f"{k} {n}" for k, n in s["rows"].items()))
    g = s["gold"]
    if g["images"]:
        ws = g["waivers"]
        log(f"  gold    {g['images']} images from {g['papers']} papers checked: no copy, crop or sibling in training "
            f"or validation; {g['gold_paper_removed']} training images of gold papers removed"
            + (f"; {len(g['weak'])} weakly guarded (a quarter crop would not be found)" if g["weak"] else "")
            + (f"; {len(ws)} waiver(s), {sum(not w['waived'] for w in ws)} matched nothing" if ws else ""))
    n = s["negatives"]
    if n["kept"] or n["rejected"]:
        log(f"  negatives  {n['kept']} 'not a fracture surface' kept as Features: none (--keep-negatives)" if n["keep_negatives"]
            else f"  negatives  {n['rejected']} 'not a fracture surface' rejected (not_fractograph; --keep-negatives keeps them)")
    n_rej = sum(sum(v["rejected"].values()) for v in s["streams"].values())
    log(f"wrote {out}: {len(VARIANTS) + 1} dataset files + dataset_info.json, {s['images']} images in images/, "
        f"rejects.jsonl ({n_rej} rejects), README.md, build.json")
