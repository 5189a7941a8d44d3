"""Does every row of the training data fit in `cutoff_len` with all its image tokens?

LlamaFactory truncates a row longer than `cutoff_len`; if that cuts image tokens, Qwen3-VL fails
mid-run with "Image features and image tokens do not match" (LlamaFactory issues #5964, #7363,
#9075). So `fracdata train` counts, before launching, what each row costs:

  image tokens  = LlamaFactory's resize to [image_min_pixels, image_max_pixels], then the
                  processor's smart_resize to multiples of patch*merge (32 px for Qwen3-VL) within
                  its own pixel bounds; one token per 32x32 px, plus 2 vision markers per image
  text tokens   = the rows' texts in the qwen3_vl chat markup, counted with the model's tokenizer
                  when the model is a local folder, else bounded by UTF-8 bytes (a byte-level BPE
                  token always covers at least one byte, so this never under-counts)
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.train.qwen import ASSISTANT, END, SYSTEM, USER, VISION_MARKERS, trained_size

# Qwen3-VL's preprocessor values, used when the model is not a local folder (a hub id offline).
QWEN3VL_PROCESSOR = {"patch_size": 16, "merge_size": 2, "min_pixels": 65536, "max_pixels": 16777216}


@dataclass
class Budget:
    rows: int
    need: int  # tokens of the longest row
    image: int  # of which image tokens (incl. vision markers)
    text: int
    where: str  # "file row N"
    exact: bool  # False: text counted as UTF-8 bytes (upper bound)


def processor_settings(model: str | Path) -> dict:
    """Patch/merge size and pixel bounds from a local model's processor config, else Qwen3-VL's."""
    folder = Path(str(model))
    for name in ("processor_config.json", "preprocessor_config.json"):
        f = folder / name
        if f.is_file():
            cfg = json.loads(f.read_text())
            cfg = cfg.get("image_processor", cfg)
            size = cfg.get("size") or {}
            return {"patch_size": cfg.get("patch_size", 16), "merge_size": cfg.get("merge_size", 2),
                    "min_pixels": size.get("shortest_edge", cfg.get("min_pixels", 65536)),
                    "max_pixels": size.get("longest_edge", cfg.get("max_pixels", 16777216))}
    return dict(QWEN3VL_PROCESSOR)


def image_tokens(width: int, height: int, max_pixels: int, min_pixels: int, proc: dict) -> int:
    """LM tokens for one image, replicating LlamaFactory's Qwen2VLPlugin resize + smart_resize."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    width, height = trained_size(width, height, max_pixels, min_pixels)
    factor = proc["patch_size"] * proc["merge_size"]
    h, w = smart_resize(height, width, factor=factor, min_pixels=proc["min_pixels"], max_pixels=proc["max_pixels"])
    return (h // factor) * (w // factor)


def _counter(model: str | Path):
    """(count(text) -> tokens, exact?)"""
    folder = Path(str(model))
    if (folder / "tokenizer_config.json").is_file():
        from transformers import AutoTokenizer

        tok = AutoTokenizer.from_pretrained(folder)
        cache: dict[str, int] = {}

        def count(text: str) -> int:
            if text not in cache:
                cache[text] = len(tok(text, add_special_tokens=False)["input_ids"])
            return cache[text]

        return count, True
    return (lambda text: len(text.encode("utf-8"))), False


def _rows(dataset_dir: Path, names: list[str]):
    info_path = dataset_dir / "dataset_info.json"
    if not info_path.is_file():
        raise FracdataError(f"{info_path} not found: build the dataset first (`make dataset`) or pass --dataset-dir")
    info = json.loads(info_path.read_text())
    for name in names:
        if name not in info:
            raise FracdataError(f"{info_path}: dataset {name!r} is not registered (has: {', '.join(info)})")
        entry = info[name]
        if entry.get("formatting") != "sharegpt" or "file_name" not in entry:
            raise FracdataError(f"{info_path}: dataset {name!r} is not a sharegpt file entry; "
                                f"the image-token check reads sharegpt files only")
        cols = {"messages": "messages", "images": "images", **entry.get("columns", {})}
        tags = {"role_tag": "role", "content_tag": "content", **entry.get("tags", {})}
        f = dataset_dir / entry["file_name"]
        if not f.is_file():
            raise FracdataError(f"{f} (dataset {name!r} in {info_path}) not found")
        text = f.read_text(encoding="utf-8")
        rows = [json.loads(line) for line in text.splitlines() if line.strip()] if f.suffix == ".jsonl" \
            else json.loads(text)
        for i, row in enumerate(rows, 1):
            rid = f" (id {row['id'][:12]})" if isinstance(row.get("id"), str) else ""
            yield f"{f} row {i}{rid}", row.get(cols["messages"]) or [], row.get(cols["images"]) or [], tags


def check(config: dict) -> Budget:
    """Count the longest row of the recipe's datasets; raise if it exceeds cutoff_len."""
    dataset_dir = Path(config.get("dataset_dir", "data"))
    media_dir = Path(config.get("media_dir") or dataset_dir)
    names = [n.strip() for key in ("dataset", "eval_dataset")
             for n in str(config.get(key) or "").split(",") if n.strip()]
    model = config.get("model_name_or_path", "")
    proc = processor_settings(model)
    max_px, min_px = int(config.get("image_max_pixels", 768 * 768)), int(config.get("image_min_pixels", 32 * 32))
    count, exact = _counter(model)
    cutoff = int(config.get("cutoff_len", 2048))
    sizes: dict[str, int] = {}
    worst = Budget(0, 0, 0, 0, "", exact)
    from PIL import Image

    for where, messages, images, tags in _rows(dataset_dir, names):
        worst.rows += 1
        img = 0
        for rel in images:
            if rel not in sizes:
                path = media_dir / rel
                try:
                    with Image.open(path) as im:
                        w, h = im.size
                except OSError as e:
                    raise FracdataError(f"{where}: image {path} cannot be read ({e})") from None
                sizes[rel] = image_tokens(w, h, max_px, min_px, proc) + VISION_MARKERS
            img += sizes[rel]
        txt = 0
        for m in messages:
            content = str(m.get(tags["content_tag"], "")).replace("<image>", "")
            role = m.get(tags["role_tag"])
            markup = USER + END + ASSISTANT if role == tags.get("user_tag", "user") else \
                SYSTEM + END if role == tags.get("system_tag", "system") else END
            txt += count(content) + count(markup)
        if img + txt > worst.need:
            worst = Budget(worst.rows, img + txt, img, txt, where, exact)
    if worst.rows == 0:
        raise FracdataError(f"{dataset_dir}: datasets {', '.join(names)} have no rows")
    if worst.need > cutoff:
        bound = "" if exact else ", text as UTF-8 bytes: an upper bound"
        raise FracdataError(
            f"cutoff_len {cutoff} is too small: {worst.where} needs {worst.need} tokens "
            f"({worst.image} image + {worst.text} text{bound}) with image_max_pixels {max_px}; "
            f"raise cutoff_len to at least {worst.need} or lower image_max_pixels")
    return worst
