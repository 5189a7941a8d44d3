"""`fracdata release dataset`: a finished build as a Hub-style Parquet dataset LlamaFactory trains from.

Reads the build (sources.py: build.json checked, each image's source and licence from the build's
manifests), leaves out every image whose licence does not allow redistribution (one reject each,
`licence_not_allowed`, with every row of it in every variant), and writes into a temporary folder
swapped into place (fracdata/dataset/outdir.py), so OUT is a whole release or the previous one:

    OUT/README.md            dataset card: the Hub's YAML (licences, configs per variant, task) + body
    OUT/dataset_info.json    LlamaFactory: one dataset per variant (+ `<name>_hub` with --repo/--push)
    OUT/data/<variant>/*.parquet, OUT/data/val/*.parquet      parquet.py
    OUT/sources.csv          each source paper: DOI, title, licence, images released
    OUT/rejects.jsonl        each image left out, with the reason
    OUT/release.json         counts, the build it came from, every file's sha256
Nothing holds a date, so the same build gives the same files.
"""

from __future__ import annotations

import csv
import json
import shutil
import tempfile
from collections import Counter
from pathlib import Path

from fracdata.errors import FracdataError

DEFAULT_SRC = Path("data/processed/synthetic")


def _prepare(out: Path) -> Path:
    if out.exists() and not out.is_dir():
        raise FracdataError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / "release.json").is_file():
        raise FracdataError(f"{out}: exists and is not a fracdata release (no release.json); remove it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-"))


def _datasets(summary: dict, variants: list[str] | None) -> dict[str, str]:
    """{dataset name: its file in the build}: the chosen variants, then val."""
    from fracdata.dataset.sharegpt import VAL_FILE, VAL_NAME, VARIANTS

    chosen = variants or list(VARIANTS)
    unknown = [v for v in chosen if v not in VARIANTS]
    if unknown:
        raise FracdataError(f"--variants {unknown[0]!r}: not a dataset variant (one of {', '.join(VARIANTS)})")
    return {**{v: VARIANTS[v][0] for v in chosen}, VAL_NAME: VAL_FILE}


def release_dataset(src: Path, out: Path, *, variants: list[str] | None = None, manifest: Path | None = None,
                    manual: Path | None = None, repo: str | None = None, log=print) -> dict:
    """Write the release of build `src` into `out`; returns release.json's content."""
    from tqdm import tqdm

    from fracdata.answer import parse_answer
    from fracdata.dataset.outdir import swap_into_place
    from fracdata.dataset.sharegpt import VAL_NAME, feature_counts
    from fracdata.records import Reject, dump_jsonl, sha256_file
    from fracdata.release import parquet
    from fracdata.release.dataset_card import render_card
    from fracdata.release.sources import STAGE, attribution, origins, read_build, refusal
    from fracdata.taxonomy import load_taxonomy

    summary = read_build(src)
    names = _datasets(summary, variants)
    org = origins(summary, src / "build.json", manifest, manual)
    tax = load_taxonomy(summary.get("config", {}).get("taxonomy"))
    manual_folder = str(manual) if manual else next((i["path"] for i in summary["inputs"] if i.get("role") == "manual"), None)
    rows = {name: json.loads((src / file).read_text(encoding="utf-8")) for name, file in names.items()}

    ids = list(dict.fromkeys(r["id"] for rs in rows.values() for r in rs))
    origin_of = {r["id"]: r["origin"] for rs in rows.values() for r in rs}
    refused = {i: why for i in ids if (why := refusal(org.get(i), manual_folder if origin_of[i] == "manual" else None))}
    rejects = []
    for i, why in refused.items():
        o = org.get(i)
        where = {name: sum(r["id"] == i for r in rs) for name, rs in rows.items()}
        rows_out = ", ".join(f"{n} {k}" for n, k in where.items() if k)
        rejects.append(Reject(stage=STAGE, file=o.file if o else (manual_folder or str(src)), line=o.line if o else None,
                              id=i, reason="licence_not_allowed", detail=f"{why}; rows left out: {rows_out}"))

    def released(r: dict) -> dict:
        o = org.get(r["id"])
        s = o.source if o else None
        return {**r, "licence": o.licence if o else None, "attribution": attribution(o),
                **{c: getattr(s, c) if s else None for c in parquet.SOURCE_COLUMNS}}

    kept = {name: [released(r) for r in rs if r["id"] not in refused] for name, rs in rows.items()}
    tmp = _prepare(out)
    try:
        files: dict[str, str] = {}
        with tqdm(total=sum(map(len, kept.values())), desc="release rows", unit="row", mininterval=1.0) as bar:
            for name, rs in kept.items():
                split = "validation" if name == VAL_NAME else "train"
                for f in parquet.write_split(rs, src, tmp / "data" / name, split, bar):
                    files[str(f.relative_to(tmp))] = sha256_file(f)
        configs = {n: n for n in names if n != VAL_NAME}
        configs[VAL_NAME] = next(iter(configs))
        (tmp / "dataset_info.json").write_text(json.dumps(parquet.dataset_info(configs, repo), indent=2) + "\n")
        papers = _write_sources(tmp / "sources.csv", kept, org)
        dump_jsonl(sorted(rejects, key=lambda r: (r.file, r.line or 0, r.id or "")), tmp / "rejects.jsonl")
        features = {r["id"]: tuple(parse_answer(r["messages"][-1]["content"], tax).labels) for rs in kept.values() for r in rs}
        licences = Counter((org[i].licence if i in org else None) or "none recorded"
                           for i in dict.fromkeys(r["id"] for rs in kept.values() for r in rs))
        report = {
            "build": {"input_hash": summary.get("input_hash"), "build_json_sha256": sha256_file(src / "build.json"),
                      "card_sha256": summary["files"].get("README.md")},
            "repo": repo, "datasets": {n: {"read": len(rows[n]), "released": len(kept[n]), "withheld": len(rows[n]) - len(kept[n])}
                                       for n in names},
            "images": {"read": len(ids), "released": len(ids) - len(refused), "withheld": len(refused),
                       "rejected": dict(Counter(r.reason for r in rejects))},
            "licences": {k: {"images": v, "hub": _hub(k)} for k, v in sorted(licences.items())},
            "papers": papers, "features": feature_counts(kept, features, tax),
            "taxonomy": {"version": tax.version, "sha256": tax.sha256},
        }
        for name in ("dataset_info.json", "sources.csv", "rejects.jsonl"):
            files[name] = sha256_file(tmp / name)
        (tmp / "README.md").write_text(render_card(report, configs), encoding="utf-8")
        files["README.md"] = sha256_file(tmp / "README.md")
        report["files"] = dict(sorted(files.items()))
        (tmp / "release.json").write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _print(report, out, log)
    return report


def _hub(licence: str) -> str:
    from fracdata.release.sources import HUB_LICENCES

    return HUB_LICENCES.get(licence, "other")


def _write_sources(path: Path, kept: dict[str, list[dict]], org) -> int:
    """sources.csv: one line per source paper (or per image without a DOI); returns the papers."""
    images: dict[str, set[str]] = {}
    for rs in kept.values():
        for r in rs:
            images.setdefault(r["doi"] or f"(no doi) {r['id']}", set()).add(r["id"])
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["doi", "title", "journal", "year", "licence", "url", "images"])
        for key in sorted(images):
            o = org.get(next(iter(sorted(images[key]))))
            s = o.source if o else None
            w.writerow([s.doi if s else "", s.title if s else "", s.journal if s else "", s.year if s else "",
                        (o.licence if o else None) or "none recorded", s.url if s else "", len(images[key])])
    return len(images)


def _print(report: dict, out: Path, log) -> None:
    for name, d in report["datasets"].items():
        log(f"  {name:12s} rows read {d['read']:6d}  released {d['released']:6d}  withheld {d['withheld']:5d}")
    im = report["images"]
    reasons = ", ".join(f"{k} {v}" for k, v in im["rejected"].items())
    log(f"  images       read {im['read']:6d}  released {im['released']:6d}  withheld {im['withheld']:5d}"
        + (f" ({reasons})" if reasons else ""))
    log("  licences     " + ", ".join(f"{k} {v['images']}" for k, v in report["licences"].items()))
    n = sum(1 for f in report["files"] if f.endswith(".parquet"))
    size = sum((out / f).stat().st_size for f in report["files"] if f.endswith(".parquet"))
    log(f"wrote {out}: {len(report['datasets'])} datasets as {n} Parquet files ({size / 2**20:.1f} MB), "
        f"dataset_info.json, README.md (dataset card), sources.csv ({report['papers']} sources), "
        f"rejects.jsonl ({im['withheld']} rejects), release.json")
