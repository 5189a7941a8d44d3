"""Rows as Parquet with an `Image` feature, and the dataset_info.json LlamaFactory reads beside them.

Layout (the Hub's own convention, so its viewer and `load_dataset(REPO, name)` find the splits):
    data/<variant>/train-00000-of-0000N.parquet      one folder per variant
    data/val/validation-00000-of-0000N.parquet       the validation split every variant shares
A shard holds at most SHARD_BYTES of image bytes (the Hub advises Parquet files of a few
hundred MB: each is one download and one row-group scan). Images are stored as the build's PNG
bytes, not re-encoded, under their content name `<pixel id>.png`, so a row's image still hashes
to its id.

Columns: `images` (a list of one Image), `messages` (user/assistant turns, the training
prompt and answer), `id` (the record's pixel id; a rotated copy keeps its source's id), `aug`,
`origin`, and the source every row carries: `licence`, `doi`, `title`, `journal`, `year`,
`figure`, `panel`, `url`, `attribution` (the credit line CC BY asks for). LlamaFactory maps
`messages` and `images` and drops the rest.
"""

from __future__ import annotations

from pathlib import Path

SHARD_BYTES = 256 * 2**20
SOURCE_COLUMNS = ("doi", "title", "journal", "year", "figure", "panel", "url")


def features():
    from datasets import Features, Image, Value

    text = Value("string")
    return Features({
        "images": [Image()], "messages": [{"role": text, "content": text}], "id": text, "aug": text, "origin": text,
        "licence": text, **{c: Value("int32") if c == "year" else text for c in SOURCE_COLUMNS}, "attribution": text,
    })


def shards(sizes: list[int], limit: int = SHARD_BYTES) -> list[range]:
    """Consecutive row ranges of at most `limit` bytes each (a bigger row is a shard of its own)."""
    out, start, total = [], 0, 0
    for i, n in enumerate(sizes):
        if i > start and total + n > limit:
            out.append(range(start, i))
            start, total = i, 0
        total += n
    out.append(range(start, len(sizes)))
    return out


def write_split(rows: list[dict], root: Path, folder: Path, split: str, progress=None) -> list[Path]:
    """Write one split's rows (build rows + their release columns) as Parquet shards; returns the files.

    A row's `images` are paths relative to `root` (the build folder); their bytes are embedded.
    """
    from datasets import Dataset, disable_progress_bars

    disable_progress_bars()  # one bar for the whole release (the caller's), not one per shard
    columns = list(features())
    folder.mkdir(parents=True, exist_ok=True)
    sizes = [sum((root / p).stat().st_size for p in r["images"]) for r in rows]
    parts = shards(sizes) if rows else [range(0)]
    files = []
    for k, part in enumerate(parts):
        batch = []
        for i in part:
            r = rows[i]
            images = [{"bytes": (root / p).read_bytes(), "path": Path(p).name} for p in r["images"]]
            batch.append({c: images if c == "images" else r.get(c) for c in columns})
            if progress is not None:
                progress.update(1)
        path = folder / f"{split}-{k:05d}-of-{len(parts):05d}.parquet"
        Dataset.from_list(batch, features=features()).to_parquet(str(path))
        files.append(path)
    return files


def dataset_info(names: dict[str, str], repo: str | None) -> dict:
    """LlamaFactory's dataset_info.json: {dataset: entry} for the local folder (`file_name`, a
    folder of Parquet shards) and, with a Hub repo, the same datasets as `<name>_hub`
    (`hf_hub_url` + config + split), which is what `dataset_dir: REMOTE:<repo>` needs: LlamaFactory
    joins a `file_name` onto the dataset_dir, which for REMOTE is not a folder.

    names: {dataset name: its config on the Hub} (val: the validation split of the first variant).
    """
    from fracdata.dataset.sharegpt import SHAREGPT_TAGS, VAL_NAME

    def entry(**where) -> dict:
        return {**where, "formatting": "sharegpt", "columns": {"messages": "messages", "images": "images"},
                "tags": dict(SHAREGPT_TAGS)}

    info = {name: entry(file_name=f"data/{name}") for name in names}
    if repo:
        for name, config in names.items():
            split = "validation" if name == VAL_NAME else "train"
            info[f"{name}_hub"] = entry(hf_hub_url=repo, subset=config, split=split)
    return info
