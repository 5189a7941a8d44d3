"""Rows, variants and dataset_info.json: the part of the dataset LlamaFactory reads.

A row (sharegpt formatting):
  {"messages": [{"role": "user", "content": <prompt.j2>}, {"role": "assistant", "content":
   <answer.j2>}], "images": ["images/<sha256>.png"], "id": <record id>, "aug": "none"|"rot90"|
   "rot180"|"rot270", "origin": "mined"|"manual"}
LlamaFactory's converter drops the columns it does not map (`id`, `aug`, `origin`), so they ride
along for tracing without changing training. Image paths are relative to the dataset folder,
which LlamaFactory uses as `media_dir` by default.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from fracdata.answer import render_answer, render_prompt
from fracdata.errors import FracdataError
from fracdata.records import sha256_bytes

# variant: (file, manual images in it, rotated copies in it). Validation is the same for all.
VARIANTS: dict[str, tuple[str, bool, bool]] = {
    "full": ("train_full.json", True, True),
    "no_rare": ("train_no_rare.json", False, True),
    "no_rotation": ("train_no_rotation.json", True, False),
    "mined_only": ("train_mined_only.json", False, False),
}
VAL_NAME, VAL_FILE = "val", "val.json"
SHAREGPT_TAGS = {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}


@lru_cache(maxsize=None)
def _texts(features: tuple[str, ...], taxonomy) -> tuple[str, str]:
    """(prompt, answer): rendered once per distinct label, not once per row."""
    return render_prompt(), render_answer(list(features), taxonomy)


def make_row(item_id: str, png: str, features, taxonomy, aug: str, origin: str) -> dict:
    """One row; `png` is the image's name in images/ (its pixel id: the record's id, or a rotated copy's)."""
    prompt, answer = _texts(tuple(features), taxonomy)
    return {
        "messages": [
            {"role": "user", "content": prompt},
            {"role": "assistant", "content": answer},
        ],
        "images": [f"images/{png}.png"],
        "id": item_id,
        "aug": aug,
        "origin": origin,
    }


def variant_rows(rows: list[dict]) -> dict[str, list[dict]]:
    """Training rows (all origins and augmentations) -> {variant: rows}, order kept."""
    return {
        name: [r for r in rows if (manual or r["origin"] != "manual") and (rotated or r["aug"] == "none")]
        for name, (_, manual, rotated) in VARIANTS.items()
    }


def check_rows(rows: list[dict], root: Path, name: str) -> None:
    """LlamaFactory's rules, enforced here because LlamaFactory only warns and skips.

    `<image>` count == len(images) (else ValueError mid-training), user/assistant turns that
    alternate in pairs (else "Skipping this abnormal example."), non-empty turns, and image
    files that exist (else it silently passes the raw path on).
    """
    for i, row in enumerate(rows):
        msgs, images = row["messages"], row["images"]
        roles = [m["role"] for m in msgs]
        n_tokens = sum(m["content"].count("<image>") for m in msgs)
        problem = None
        if not msgs or roles != ["user", "assistant"] * (len(msgs) // 2) or len(msgs) % 2:
            problem = f"roles {roles} are not user/assistant pairs"
        elif n_tokens != len(images):
            problem = f"{n_tokens} <image> tokens for {len(images)} images (see fracdata/templates/prompt.j2)"
        elif any(not m["content"].strip() for m in msgs):
            problem = "an empty turn"
        else:
            missing = [p for p in images if not (root / p).is_file()]
            if missing:
                problem = f"image file {missing[0]} is missing"
        if problem:
            raise FracdataError(f"{name} row {i} (id {row['id']}): {problem}; LlamaFactory would skip or fail on it")


def write_rows(rows: list[dict], path: Path) -> str:
    """A JSON array, one row per line (diffable, deterministic); returns the file's sha256."""
    text = "[\n" + ",\n".join(json.dumps(r, ensure_ascii=False) for r in rows) + "\n]\n" if rows else "[]\n"
    data = text.encode("utf-8")
    path.write_bytes(data)
    return sha256_bytes(data)


def dataset_info() -> dict:
    """dataset_info.json: one registered dataset per variant, so a recipe switches by one key."""

    def entry(file_name: str) -> dict:
        return {"file_name": file_name, "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"}, "tags": dict(SHAREGPT_TAGS)}

    info = {name: entry(file) for name, (file, _, _) in VARIANTS.items()}
    info[VAL_NAME] = entry(VAL_FILE)
    return info


def write_datasets(folder: Path, images: dict[str, tuple[str, tuple[str, ...]]], features: dict[str, tuple[str, ...]],
                   train: list[str], val: list[str], rotations: tuple[int, ...], taxonomy):
    """Rows of every variant and val.json, checked and written; unreferenced images deleted.

    images: {id: (origin, ids of its rotated copies)}; features: {id: taxonomy ids}; train/val:
    ids in row order. Returns ({dataset: rows}, {file: sha256}, names of the images kept).
    """
    from fracdata.dataset.decode import ROTATIONS

    train_rows = []
    for i in train:
        origin, rotated = images[i]
        train_rows.append(make_row(i, i, features[i], taxonomy, "none", origin))
        train_rows += [make_row(i, r, features[i], taxonomy, ROTATIONS[a], origin) for a, r in zip(rotations, rotated, strict=True)]
    val_rows = [make_row(i, i, features[i], taxonomy, "none", images[i][0]) for i in val]
    datasets = {**variant_rows(train_rows), VAL_NAME: val_rows}
    files = {}
    for name, rows in datasets.items():
        file = VARIANTS[name][0] if name in VARIANTS else VAL_FILE
        check_rows(rows, folder, file)
        files[file] = write_rows(rows, folder / file)
    files["dataset_info.json"] = write_json(dataset_info(), folder / "dataset_info.json")
    referenced = {p.removeprefix("images/") for rows in datasets.values() for r in rows for p in r["images"]}
    for f in (folder / "images").iterdir():  # rotated copies of validation images; dropped duplicates
        if f.name not in referenced:
            f.unlink()
    return datasets, files, referenced


def feature_counts(datasets: dict[str, list[dict]], features: dict[str, tuple[str, ...]], taxonomy) -> dict[str, dict[str, int]]:
    """{feature id or "(none)": {dataset: rows}}, from the features each row's image holds."""
    counts: dict[str, dict[str, int]] = {}
    for name, rows in datasets.items():
        for r in rows:
            for f in features[r["id"]] or ("(none)",):
                counts.setdefault(f, dict.fromkeys(datasets, 0))[name] += 1
    order = {f: i for i, f in enumerate(taxonomy.ids + ["(none)"])}
    return {f: counts[f] for f in sorted(counts, key=order.__getitem__)}


def write_json(obj, path: Path) -> str:
    data = (json.dumps(obj, ensure_ascii=False, indent=2) + "\n").encode("utf-8")
    path.write_bytes(data)
    return sha256_bytes(data)
