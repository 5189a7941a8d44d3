"""The gold guard on the images users have (issue 22): data bars and lettering are not shared
content, small tiles are, both ways and without source.parent; waivers; no field straddles the split."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from fracdata.cli import main
from fracdata.dataset.split import split_groups
from fracdata.synth import pairs
from tests.support.buildkit import encode, lrec, put, write_jsonl

SIZE = (128, 128)  # the demo corpus's size: the hardest for keypoints


def build(*argv) -> int:
    return main(["build", "--workers", "2", "--rotations", "", *map(str, argv)])


def write_set(folder, images: dict, doi_prefix: str, gold: bool = False) -> dict[str, str]:
    """Images as a manifest (or gold file) in `folder`, one paper each, no source.parent; {name: id}."""
    ids, recs = {}, []
    for name, a in images.items():
        ids[name] = put(folder / "img" / f"{name}.png", encode(Image.fromarray(a)))
        rec = {"id": ids[name], "image": f"img/{name}.png", "source": {"doi": f"10.1/{doi_prefix}-{name}", "licence": "CC0-1.0"}}
        recs.append({**rec, "features": ["dimple_equiaxed"]} if gold else rec)
    write_jsonl(folder / ("gold.jsonl" if gold else "manifest.jsonl"), recs)
    if not gold:
        write_jsonl(folder / "labels.jsonl", [lrec(i, ["dimple_equiaxed"]) for i in ids.values()])
    return ids


def inputs(tmp_path, *extra):
    return ["--manifest", tmp_path / "t" / "manifest.jsonl", "--labels", tmp_path / "t" / "labels.jsonl",
            "--gold", tmp_path / "g" / "gold.jsonl", "--out", tmp_path / "ds", *extra]


def test_distinct_fields_with_one_data_bar_scale_bar_and_letter_pass(tmp_path, capsys):
    train = pairs.distinct(12, SIZE, seed=2)
    gold = pairs.distinct(12, SIZE, seed=1)
    # every image carries the same strip: one microscope, one magnification text, one scale bar, "(a)"
    assert len({a[-9:].tobytes() for a in train + gold}) == 1 and len({a[:20, :30].tobytes() for a in train + gold}) > 1
    write_set(tmp_path / "t", {f"t{k}": a for k, a in enumerate(train)}, "train")
    write_set(tmp_path / "g", {f"g{k}": a for k, a in enumerate(gold)}, "gold", gold=True)
    assert build(*inputs(tmp_path)) == 0, capsys.readouterr().err
    summary = json.loads((tmp_path / "ds" / "build.json").read_text())
    assert summary["streams"]["mined"]["kept"] == 12 and summary["gold"]["images"] == 12


def test_a_ninth_tile_is_found_both_ways_without_parent(tmp_path, capsys):
    parent_a, tile_a = pairs.related("tile 1/9", 100, SIZE)  # intergranular facets
    parent_b, tile_b = pairs.related("tile 1/9", 105, SIZE)  # dimples
    assert parent_a.shape == (411, 384) and tile_a.shape == SIZE  # a tile is 1/9 of its parent's specimen
    t = write_set(tmp_path / "t", {"parent_a": parent_a, "tile_b": tile_b,
                                   **{f"x{k}": a for k, a in enumerate(pairs.distinct(4, SIZE, seed=3))}}, "train")
    g = write_set(tmp_path / "g", {"tile_a": tile_a, "parent_b": parent_b,
                                   **{f"y{k}": a for k, a in enumerate(pairs.distinct(3, SIZE, seed=4))}}, "gold", gold=True)
    assert build(*inputs(tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: gold leak: 2 training image(s) share a region with a gold image") and err.count("\n") == 1
    assert f"{t['parent_a']} ({tmp_path / 't' / 'manifest.jsonl'}:1) ~ gold {g['tile_a']}" in err  # gold cut from training
    assert f"{t['tile_b']} ({tmp_path / 't' / 'manifest.jsonl'}:2) ~ gold {g['parent_b']}" in err  # training cut from gold
    assert "scale 1;" in err or "scale 1," in err or "scale 0.99" in err or "scale 1.0" in err  # same pixels: scale ~1
    assert "same parent" not in err and not (tmp_path / "ds").exists()


def test_what_the_guard_finds_does_not_depend_on_how_many_gold_images_are_indexed():
    from fracdata.dataset import lookup, overlap

    others = {f"o{k}": overlap.gold_keypoints(Image.fromarray(a)) for k, a in enumerate(pairs.distinct(40, SIZE, seed=6))}
    for how, seed in (("tile 1/9", 100), ("zoom x2", 103), ("crop 60% enlarged", 104)):
        parent, derived = pairs.related(how, seed, SIZE)
        for gold, train in ((parent, derived), (derived, parent)):
            scale = overlap.work_factor(train.shape[::-1])
            views = overlap.gold_keypoints(Image.fromarray(gold), overlap.gold_factors(gold.shape[::-1], [scale]))
            q = overlap.keypoints(Image.fromarray(train), overlap.N_TRAIN, scale=scale)
            alone = lookup.GoldSet({"target": views}).query(q, lookup.probe_set(q), scale)
            crowded = lookup.GoldSet({**others, "target": views}).query(q, lookup.probe_set(q), scale)
            assert [o.gold for o in alone] == ["target"], (how, alone)
            assert crowded == alone, (how, crowded, alone)  # the same finding, to the last digit


def test_waivers_let_a_judged_pair_through_listed_on_the_card(tmp_path, capsys):
    parent, tile = pairs.related("tile 1/4", 107, SIZE)
    t = write_set(tmp_path / "t", {"parent": parent, **{f"x{k}": a for k, a in enumerate(pairs.distinct(3, SIZE, seed=3))}},
                  "train")
    g = write_set(tmp_path / "g", {"tile": tile, "other": pairs.distinct(1, SIZE, seed=4)[0]}, "gold", gold=True)
    assert build(*inputs(tmp_path)) == 2 and "gold leak" in capsys.readouterr().err
    w = tmp_path / "waivers.jsonl"
    write_jsonl(w, [{"gold": g["tile"], "train": t["parent"], "reason": "a person looked: different specimens",
                     "who": "A. Reviewer"},
                    {"gold": g["other"], "train": t["x0"], "reason": "precaution", "who": "B. Reviewer"}])
    assert build(*inputs(tmp_path, "--waivers", w)) == 0
    out = capsys.readouterr().out
    assert (f"warning: waiver {w}:2 (gold {g['other'][:12]}…, training {t['x0'][:12]}…) matched nothing") in out
    assert "; 2 waiver(s), 1 matched nothing" in out
    summary = json.loads((tmp_path / "ds" / "build.json").read_text())
    first, second = sorted(summary["gold"]["waivers"], key=lambda x: x["where"])
    assert first["gold"] == g["tile"] and first["train"] == t["parent"] and first["who"] == "A. Reviewer"
    assert len(first["waived"]) == 1 and first["waived"][0].startswith("shared region (")
    assert second["waived"] == [] and second["where"] == f"{w}:2"
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "left out; none found but the 1 pair(s) waived below). " in card
    assert "### Waivers (2; 1 matched nothing)" in card and "**matched nothing**" in card and "A. Reviewer" in card
    # a waiver line with a key the model does not know is an error, not a silently ignored waiver
    write_jsonl(w, [{"gold": g["tile"], "train": t["parent"], "reason": "x", "who": "y", "note": "typo"}])
    assert build(*inputs(tmp_path, "--waivers", w, "--force")) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: waivers: 1 line(s) cannot be read: {w}:1: invalid_record (note: Extra inputs are not permitted)")


def test_a_zoom_pair_never_straddles_train_and_validation(tmp_path, capsys):
    low, high = pairs.related("zoom x2", 106, SIZE)  # cleavage facets at x1,000 and x2,000, in two papers
    others = {f"x{k:02d}": a for k, a in enumerate(pairs.distinct(18, SIZE, seed=8))}
    t = write_set(tmp_path / "t", {"low": low, "high": high, **others}, "train")
    g = write_set(tmp_path / "g", {"y": pairs.distinct(1, SIZE, seed=9)[0]}, "gold", gold=True)
    # the paper split alone (seed 0, a third to validation) puts the two zooms on different sides
    keys = {i: f"doi:10.1/train-{n}" for n, i in t.items()}
    plain = split_groups([(i, keys[i], ["dimple_equiaxed"]) for i in t.values()], 0.3, 0)
    assert plain[t["low"]] != plain[t["high"]]
    assert build(*inputs(tmp_path, "--seed", "0", "--val-fraction", "0.3")) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    val = {r["images"][0].split("/")[-1][:-4] for r in json.loads((tmp_path / "ds" / "val.json").read_text())}
    assert (t["low"] in val) == (t["high"] in val)  # one side
    moved = json.loads((tmp_path / "ds" / "build.json").read_text())["split"]["moved_to_train"]
    assert {m["image"] for m in moved} & {t["low"], t["high"]} and "moved to train" in out
    m = next(m for m in moved if m["image"] in (t["low"], t["high"]))
    assert m["other"] in (t["low"], t["high"]) and m["other"] != m["image"] and abs(np.log2(m["scale"])) > 0.9  # a x2 zoom
    assert g["y"] not in val
