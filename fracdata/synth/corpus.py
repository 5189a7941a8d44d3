"""The synthetic corpus behind `fracdata synth`: plan the features of each split, render the images paper
by paper from independent seed streams (with what literature figures carry: figures.py), write manifest /
oracle labels / manual / gold / teacher files, figures.jsonl and synth.json, atomically. The layout of OUT
is in this package's docstring (synth/__init__.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from fracdata import __version__
from fracdata.errors import FracdataError
from fracdata.files import Output, check_outputs, replaced_folder
from fracdata.synth.teacher import AGREEMENT, CONFUSION, MODES, write_teachers

VERSION = 2  # bump when any image or text changes for the same seed (2: overlays, zoom series, tiles, copies)
RARE = "fish_eye"
COMMON = ("dimple_equiaxed", "cleavage_facet", "ig_facet", "striation_ductile", "gas_pore", "secondary_crack")
# Two-feature images are a matrix texture with something on it that occurs there in practice.
PAIRS = (
    ("dimple_equiaxed", "gas_pore"), ("dimple_equiaxed", "secondary_crack"), ("ig_facet", "secondary_crack"),
    ("cleavage_facet", "secondary_crack"), ("striation_ductile", "secondary_crack"), ("striation_ductile", "gas_pore"),
)
DIRECTIONAL = ("cleavage_facet", "striation_ductile", "secondary_crack")  # textures with a growth direction
PAIR_SHARE = 0.3  # of the non-rare images; the rest are single-feature
RARE_SHARE = {"manifest": 0.01, "gold": 0.08}  # mined corpora rarely show fish-eyes; gold oversamples them a little
SIDES = (96, 128)  # px; the tiny Qwen3-VL spends one visual token per 32x32 px: 9-16 tokens
PAPER_SIZE = {"manifest": (5, 15), "manual": (1, 4), "gold": (5, 15)}
STREAMS = {"manifest": 0, "manual": 1, "gold": 2}  # independent seed streams: gold shares nothing with training
CANONICAL_JITTER_DEG = 5.0  # std of the growth direction around +x in canonical mode (clipped at 2 std)
DOI_PREFIX = {"manifest": "10.5555/synth", "manual": "10.5555/synth-manual", "gold": "10.5555/synth-gold"}


def _spread(n: int, kinds) -> list:
    """Exactly n items over kinds as evenly as possible (the first n % k kinds get one more)."""
    return [kinds[i % len(kinds)] for i in range(n)]


def plan(n: int, split: str, rng) -> list[tuple[str, ...]]:
    """Feature tuples for one split, exact counts, shuffled: rare share, then 70% single / 30% pairs."""
    if split == "manual":
        items = [(RARE,)] * n
    else:
        n_rare = int(n * RARE_SHARE[split] + 0.5)
        n_pair = int((n - n_rare) * PAIR_SHARE + 0.5)
        items = [(RARE,)] * n_rare + _spread(n_pair, PAIRS) + [(f,) for f in _spread(n - n_rare - n_pair, COMMON)]
    order = rng.permutation(len(items))
    return [items[i] for i in order]


def _angle(rng, mode: str):
    import numpy as np

    if mode == "random":
        return rng.uniform(0, 2 * np.pi)
    return float(np.clip(rng.normal(0, CANONICAL_JITTER_DEG), -2 * CANONICAL_JITTER_DEG, 2 * CANONICAL_JITTER_DEG)) * np.pi / 180


def _split(seed: int, split: str, n: int, orientation: str, tax):
    """Render one split; yields dicts with image bytes, features, source and text, paper by paper.

    The plan's features are regrouped into units (single panels, zoom series, tiles, ROI pairs,
    PNG + JPEG copies: figures.py), packed into papers and figures; every image carries the
    overlays of its paper's look (data bar of one of the shared microscopes, letters, arrows).
    """
    import numpy as np

    from fracdata.synth import figures, overlays, text

    def rng_for(purpose, i=0):  # same-length spawn keys: distinct streams per purpose and image
        return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(STREAMS[split], purpose, i)))

    meta = rng_for(0)
    feats = plan(n, split, meta)
    papers = figures.papers(figures.units(feats, meta), PAPER_SIZE[split], meta) if n else []
    # gold 'all': every image is drawn canonically, then turned by k*90 deg, k in equal shares
    turns = meta.permutation(np.arange(n) % 4) if orientation == "all" else np.zeros(n, int)
    scopes = overlays.microscopes(seed)  # shared by every split: gold and training images share data bars
    mode = "canonical" if orientation == "all" else orientation
    i = 0
    for p, paper in enumerate(papers):
        prng = rng_for(1, p)
        doi = f"{DOI_PREFIX[split]}.{p + 1:04d}"
        first = paper[0][1][0]
        material = text.material(prng)
        title = text.title(prng, first, material)
        year = int(prng.integers(2005, 2026))
        style = {"contrast": prng.uniform(0.7, 1.3), "brightness": prng.uniform(-0.08, 0.08),
                 "blur": prng.uniform(0.0, 1.0), "noise": prng.uniform(0.01, 0.05)}
        look = figures.look(prng, scopes)
        for fno, (kind, content) in enumerate(figures.figures(paper, prng), 1):
            panel_feats = [u[1][0] for u in content] if kind == "panels" else content
            letters = [chr(ord("a") + k) for k in range(len(panel_feats))]
            cap = text.caption(prng, fno, list(zip(letters, panel_feats, strict=True)), material)
            note = figures.NOTE[kind].format(**{c: c for c in "abcdefghi"}) if kind != "panels" else ""
            if kind == "panels":
                drawn = []
                for letter, (ukind, ufeats) in zip(letters, content, strict=True):
                    irng = rng_for(2, i + len(drawn))
                    h, w = (int(v) for v in irng.choice(SIDES, 2))
                    views = figures.draw_panel(ukind, ufeats[0], letter, irng, (h, w), _angle(irng, mode), style, look)
                    drawn += [(letter, ufeats[0], v, ukind) for v in views]
            else:
                irng = rng_for(2, i)
                h, w = (int(v) for v in irng.choice(SIDES, 2))
                views = figures.draw(kind, content, letters, irng, (h, w), _angle(irng, mode), style, look,
                                     parent=f"{doi}/fig{fno}-raw.tif")
                drawn = [(letter, f, v, kind) for letter, f, v in zip(letters, content, views, strict=True)]
            for letter, f, v, unit in drawn:
                img = np.rot90(v["pixels"], int(turns[i]))
                rows = v["mask"].all(1)[::-1]  # the data bar (or a tile's share of it): whole overlay rows at the bottom
                bar_rows = int(np.argmin(rows)) if not rows.all() else len(rows)
                yield {"data": figures.fields.encode(img, v["fmt"]), "ext": "jpg" if v["fmt"] == "jpeg" else "png",
                       "features": tax.sort(f), "doi": doi, "title": title, "year": year, "figure": f"Fig. {fno}",
                       "panel": letter, "caption": f"{cap} {note}".strip(), "turn": 90 * int(turns[i]),
                       "parent": v["parent"], "unit": unit, "microscope": scopes.index(look.scope) if look.bar else None,
                       "mag": v["mag"], "bar_rows": bar_rows, "overlay_px": int(v["mask"].sum()),
                       "excerpts": text.excerpts(prng, f"Fig. {fno}", letter, f)}
                i += 1


def _write_images(items, folder: Path, seen: dict, split: str):
    from fracdata.images import image_id

    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for it in items:  # written as drawn: only the text metadata of each image stays in memory
        it["id"] = image_id(it["data"])  # sha256 of the pixels, as every stage computes it
        if it["id"] in seen:  # an exact repeat would be a generator bug (and a gold leak if across splits)
            raise FracdataError(f"{folder}: image {it['id']} of {split} repeats one in {seen[it['id']]}")
        seen[it["id"]] = split
        it["file"] = f"{it['id']}.{it.pop('ext')}"
        (folder / it["file"]).write_bytes(it.pop("data"))
        written.append(it)
    return written


def generate(out, seed: int = 0, n: int = 3000, n_gold: int = 200, n_manual: int = 60,
             orientation: str = "random", gold_orientation: str = "random", teacher_agreement: float = AGREEMENT,
             teacher_errors=("random",), random_teachers: int = 1) -> dict:
    """Write the corpus under `out` (see the module doc) and return the summary in synth.json."""
    from fracdata.records import GoldRecord, Labeler, LabelRecord, ManifestRecord, Source, dump_jsonl, sha256_file
    from fracdata.synth import figures
    from fracdata.taxonomy import load_taxonomy

    for name, v in (("seed", seed), ("n", n), ("n_gold", n_gold), ("n_manual", n_manual)):
        if v < 0:
            raise FracdataError(f"synth: {name} must be >= 0, got {v}")
    if orientation not in ("random", "canonical") or gold_orientation not in ("random", "canonical", "all"):
        raise FracdataError(f"synth: unknown orientation {orientation!r} / gold orientation {gold_orientation!r}")
    if not 0.0 <= teacher_agreement <= 1.0:
        raise FracdataError(f"synth: --teacher-agreement must be between 0 and 1, got {teacher_agreement}")
    teacher_errors = list(dict.fromkeys(teacher_errors))  # each mode once, in the order given
    if random_teachers < 1 or (random_teachers > 1 and "random" not in teacher_errors):
        raise FracdataError(f"synth: --random-teachers {random_teachers}: needs >= 1, and `random` among --teacher-errors")
    if set(teacher_errors) - set(MODES):
        raise FracdataError(f"synth: unknown teacher error mode(s) {sorted(set(teacher_errors) - set(MODES))}")
    out = Path(out)
    check_outputs([Output(out, "synthetic corpus folder")], [])  # below a file: said as such
    if out.exists() and not out.is_dir():
        raise FracdataError(f"{out}: exists and is not a folder; --out names the corpus folder")
    if out.exists() and any(out.iterdir()) and not (out / "synth.json").is_file():
        raise FracdataError(f"{out}: exists, is not empty and holds no synth.json; refusing to replace it")
    tax = load_taxonomy()
    with replaced_folder(out) as tmp:  # atomic: built aside, then renamed into place
        seen: dict[str, str] = {}
        train = _write_images(_split(seed, "manifest", n, orientation, tax), tmp / "images", seen, "manifest")
        manual = _write_images(_split(seed, "manual", n_manual, orientation, tax), tmp / "manual/images", seen, "manual")
        gold = _write_images(_split(seed, "gold", n_gold, gold_orientation, tax), tmp / "gold", seen, "gold")

        def source(it):
            return Source(doi=it["doi"], title=it["title"], journal="Journal of Synthetic Fractography",
                          year=it["year"], figure=it["figure"], panel=it["panel"], licence="CC0-1.0", parent=it["parent"])

        def manifest(items):
            return [ManifestRecord(id=it["id"], image=f"images/{it['file']}", caption=it["caption"],
                                   excerpts=it["excerpts"], source=source(it)) for it in items]

        def labels(items, kind):
            lab = Labeler(kind=kind, model="fracdata-synth" if kind == "synthetic" else None, taxonomy_version=tax.version)
            return [LabelRecord(id=it["id"], features=it["features"], labeler=lab) for it in items]

        dump_jsonl(manifest(train), tmp / "manifest.jsonl")
        dump_jsonl(labels(train, "synthetic"), tmp / "labels.jsonl")
        dump_jsonl(manifest(manual), tmp / "manual/manifest.jsonl")
        dump_jsonl(labels(manual, "human"), tmp / "manual/labels.jsonl")
        how = {"all": "turned {turn} deg from canonical", "canonical": "canonical orientation", "random": "random orientation"}
        # gold carries its caption and excerpts as mined gold would, so `fracdata label --gold` sends them
        dump_jsonl([GoldRecord(id=it["id"], image=f"gold/{it['file']}", features=it["features"], source=source(it),
                               caption=it["caption"], excerpts=it["excerpts"],
                               note=f"synthetic gold; {it['doi']} {it['figure']}{it['panel']}; "
                                    + how[gold_orientation].format(turn=it["turn"])) for it in gold], tmp / "gold.jsonl")
        dump_jsonl(figures.truth({"manifest": train, "manual": manual, "gold": gold}), tmp / "figures.jsonl")
        teacher = write_teachers(tmp / "teacher", seed, {"manifest": train, "gold": gold}, teacher_errors,
                                 teacher_agreement, tax, STREAMS, (*COMMON, RARE), random_teachers)

        def per_feature(items):
            counts = {}
            for it in items:
                for f in it["features"]:
                    counts[f] = counts.get(f, 0) + 1
            return dict(sorted(counts.items()))

        splits = {"manifest": train, "manual": manual, "gold": gold}
        summary = {
            "generator": "fracdata-synth", "version": VERSION, "fracdata_version": __version__,
            "taxonomy_version": tax.version,
            "config": {"seed": seed, "n": n, "n_gold": n_gold, "n_manual": n_manual, "orientation": orientation,
                       "gold_orientation": gold_orientation, "rare_feature": RARE, "features": [*COMMON, RARE],
                       "pairs": [list(p) for p in PAIRS], "pair_share": PAIR_SHARE, "rare_share": RARE_SHARE,
                       "sides": list(SIDES), "paper_size": PAPER_SIZE, "seed_streams": STREAMS,
                       "directional": list(DIRECTIONAL), "canonical_jitter_deg": CANONICAL_JITTER_DEG,
                       "teacher": {"agreement": teacher_agreement, "errors": teacher_errors, "confusion": list(CONFUSION),
                                   **({"random_teachers": random_teachers} if random_teachers > 1 else {}),
                                   "definition": "share of images whose teacher label set equals the oracle's exactly"}},
            "counts": {"manifest": len(train), "labels": len(train), "manual": len(manual), "gold": len(gold),
                       "papers": {k: len({it["doi"] for it in v}) for k, v in splits.items()},
                       "features": {k: per_feature(v) for k, v in splits.items()},
                       "two_feature": {k: sum(len(it["features"]) == 2 for it in v) for k, v in splits.items()},
                       **figures.counts(splits),
                       "gold_rotations": ({str(t): sum(it["turn"] == t for it in gold) for t in (0, 90, 180, 270)}
                                          if gold_orientation == "all" else {}),
                       "teacher": teacher},
            "files": {name: sha256_file(tmp / name) for name in
                      ("manifest.jsonl", "labels.jsonl", "manual/manifest.jsonl", "manual/labels.jsonl", "gold.jsonl",
                       "figures.jsonl",
                       *(f"teacher/{m}{suffix}.jsonl" for m in teacher for suffix in ("", ".gold")))},
        }
        (tmp / "synth.json").write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return {**summary, "out": str(out)}
