"""The gold guard on inputs made here: gold papers, crops, tiles, siblings, unreadable gold, negatives."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from fracdata.cli import main
from fracdata.synth.textures import render
from tests.support.buildkit import encode, lrec, mrec, noise, put, read_rows, tree_bytes, write_jsonl

KINDS = ("dimple_equiaxed", "cleavage_facet", "ig_facet", "striation_ductile", "secondary_crack", "fish_eye")


def fractograph(seed: int, h: int = 384, w: int = 512) -> Image.Image:
    """An SEM-sized synthetic fracture surface (texture enough for keypoints)."""
    rng = np.random.default_rng(seed)
    style = {"contrast": 1.0, "brightness": 0.0, "blur": 0.3, "noise": 0.02}
    return Image.fromarray(render([KINDS[seed % len(KINDS)]], rng, h, w, rng.uniform(0, 6.28), style))


def build(*argv) -> int:
    return main(["build", "--workers", "2", *map(str, argv)])


def training_set(raw, n: int = 6, parents: dict | None = None):
    ims = [fractograph(s) for s in range(n)]
    ids = [put(raw / "images" / f"{k}.png", encode(im)) for k, im in enumerate(ims)]
    man = [mrec(i, f"images/{k}.png", f"10.1/p{k}") for k, i in enumerate(ids)]
    for k, parent in (parents or {}).items():
        man[k]["source"]["parent"] = parent
    write_jsonl(raw / "manifest.jsonl", man)
    write_jsonl(raw / "labels.jsonl", [lrec(i, ["dimple_equiaxed"]) for i in ids])
    return ims, ids


def args(raw, tmp_path, *extra):
    return ["--manifest", raw / "manifest.jsonl", "--labels", raw / "labels.jsonl", "--gold", raw / "gold.jsonl",
            "--out", tmp_path / "ds", "--rotations", "", *extra]


def test_quarter_crop_80_percent_crop_sibling_tile_and_reverse_crop_fail_the_build(tmp_path, capsys):
    raw = tmp_path / "raw"
    ims, ids = training_set(raw, parents={2: "lab/specimen-7/field-3.tif"})
    W, H = ims[0].size
    gold = {
        "quarter": ims[0].crop((W // 2, H // 4, W, H // 4 + H // 2)),  # a quarter of the area
        "crop80": ims[1].crop((37, 20, 37 + int(0.8 * W), 20 + int(0.8 * H))).resize((300, 225)),  # scaled, too
        "sibling": fractograph(100),  # other pixels, cut from the same raw field as training image 2
        "parent": fractograph(3, 768, 1024),  # training image 3 is a crop of this gold image (the reverse)
        "unrelated": fractograph(200),
    }
    # training image 3 becomes a crop of the bigger gold image "parent"
    ims[3] = gold["parent"].crop((300, 200, 812, 584))
    ids[3] = put(raw / "images" / "3.png", encode(ims[3]))
    man = [json.loads(x) for x in (raw / "manifest.jsonl").read_text().splitlines()]
    man[3]["id"] = ids[3]
    write_jsonl(raw / "manifest.jsonl", man)
    write_jsonl(raw / "labels.jsonl", [lrec(i, ["dimple_equiaxed"]) for i in ids])
    recs = []
    for name, im in gold.items():
        gid = put(raw / "gold" / f"{name}.png", encode(im))
        rec = {"id": gid, "image": f"gold/{name}.png", "features": ["dimple_equiaxed"]}
        if name == "sibling":
            rec["source"] = {"parent": "lab/specimen-7/field-3.tif"}
        recs.append(rec)
    gid = {name: r["id"] for name, r in zip(gold, recs)}
    write_jsonl(raw / "gold.jsonl", recs)

    assert build(*args(raw, tmp_path)) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: gold leak: 3 training image(s) share a region with a gold image (a crop, tile or scaled "
                          "crop, either way round): ") and err.count("\n") == 1
    assert f"{ids[0]} ({raw / 'manifest.jsonl'}:1) ~ gold {gid['quarter']}" in err
    assert f"{ids[1]} ({raw / 'manifest.jsonl'}:2) ~ gold {gid['crop80']}" in err
    assert f"{ids[3]} ({raw / 'manifest.jsonl'}:4) ~ gold {gid['parent']}" in err
    assert (f"; 1 training image(s) were cut from the same parent as a gold image: {ids[2]} ({raw / 'manifest.jsonl'}:3) "
            f"and gold {gid['sibling']} ({raw / 'gold.jsonl'}:3) both from 'lab/specimen-7/field-3.tif'") in err
    assert gid["unrelated"] not in err and ids[4] not in err and ids[5] not in err
    assert err.endswith(". Remove them from the training inputs (or, where a person judged a pair distinct, waive it: "
                        "--waivers, docs/build.md)\n")
    assert not (tmp_path / "ds").exists()

    # without the leaks the same gold set passes: nothing else in it is flagged
    write_jsonl(raw / "gold.jsonl", [recs[4]])
    assert build(*args(raw, tmp_path)) == 0
    summary = json.loads((tmp_path / "ds" / "build.json").read_text())
    assert summary["gold"] == {"images": 1, "papers": 0, "gold_paper_removed": 0, "weak": [], "waivers": []}
    assert "data bars and lettering left out; none found). " in (tmp_path / "ds" / "README.md").read_text()


def test_training_images_of_a_gold_paper_are_rejected_and_counted(tmp_path, capsys):
    raw = tmp_path / "raw"
    ids = [put(raw / "images" / f"{k}.png", encode(noise(k))) for k in range(8)]
    dois = ["10.1/Gold.A", "10.1/gold.a", "10.1/other", "https://doi.org/10.1/GOLD.B"] + [f"10.1/p{k}" for k in range(4)]
    write_jsonl(raw / "manifest.jsonl", [mrec(i, f"images/{k}.png", d) for k, (i, d) in enumerate(zip(ids, dois))])
    write_jsonl(raw / "labels.jsonl", [lrec(i, ["gas_pore"]) for i in ids])
    g1 = put(raw / "gold" / "a.png", encode(noise(50)))
    # b: a featureless specimen (a smooth ramp): no keypoints, so a crop of it would not be found
    ramp = np.add.outer(np.arange(80), np.arange(96)).astype(np.uint8)
    g2 = put(raw / "gold" / "b.png", encode(Image.fromarray(ramp)))
    write_jsonl(raw / "gold.jsonl", [
        {"id": g1, "image": "gold/a.png", "features": ["gas_pore"], "source": {"doi": "https://doi.org/10.1/GOLD.a"}},
        {"id": g2, "image": "gold/b.png", "features": ["gas_pore"], "source": {"doi": "doi:10.1/gold.b", "figure": "Fig. 2"}},
    ])
    assert build(*args(raw, tmp_path)) == 0
    out = capsys.readouterr().out
    rejects = [json.loads(x) for x in (tmp_path / "ds" / "rejects.jsonl").read_text().splitlines()]
    gp = sorted((r["id"], r["detail"]) for r in rejects if r["reason"] == "gold_paper")
    assert gp == sorted([
        (ids[0], f"source DOI 10.1/gold.a is a gold benchmark paper ({raw / 'gold.jsonl'}:1); its images stay out of training"),
        (ids[1], f"source DOI 10.1/gold.a is a gold benchmark paper ({raw / 'gold.jsonl'}:1); its images stay out of training"),
        (ids[3], f"source DOI 10.1/gold.b is a gold benchmark paper ({raw / 'gold.jsonl'}:2); its images stay out of training"),
    ])
    summary = json.loads((tmp_path / "ds" / "build.json").read_text())
    assert summary["streams"]["mined"] == {"read": 8, "kept": 5, "rejected": {"gold_paper": 3}}  # kept + rejected = read
    assert summary["streams"]["labels"] == {"read": 8, "kept": 5, "rejected": {"image_rejected": 3}}
    assert summary["gold"]["gold_paper_removed"] == 3 and summary["gold"]["papers"] == 2
    card = (tmp_path / "ds" / "README.md").read_text()
    assert "3 training images from gold papers were removed (`gold_paper`)" in card
    # blocky noise is guarded: its central 64 px crop (the smallest training image) is found
    assert summary["gold"]["weak"] == [g2]
    assert "The crop check covers 1 of the 2 gold images; 1 are weakly guarded" in card and f"`{g2}`." in card
    assert "  gold    2 images from 2 papers checked: no copy, crop or sibling in training or validation; 3 training images of gold papers removed; 1 weakly guarded (a quarter crop would not be found)\n" in out
    kept_ids = {r["id"] for f in ("train_full.json", "val.json") for r in read_rows(tmp_path / "ds" / f)}
    assert kept_ids == {ids[k] for k in (2, 4, 5, 6, 7)}


def test_a_gold_paper_without_a_doi_is_still_one_paper(tmp_path, capsys):
    """A PDF states no DOI of its own (the miner records none, `doi_from` none, issue 23): its
    sibling panels in the training inputs are still from the gold paper, by its source file;
    another DOI-less PDF is not."""
    raw = tmp_path / "raw"
    ids = [put(raw / "images" / f"{k}.png", encode(noise(k))) for k in range(4)]
    files = ["papers/ieee-2024.pdf", "papers/ieee-2024.pdf", "papers/other.pdf", None]
    man = []
    for k, (i, f) in enumerate(zip(ids, files)):
        man.append(mrec(i, f"images/{k}.png", None if f else f"10.1/p{k}"))
        if f:
            man[-1]["source"] = {"file": f, "doi_from": "none", "figure": f"Fig. {k + 1}", "licence": "CC BY 4.0"}
    write_jsonl(raw / "manifest.jsonl", man)
    write_jsonl(raw / "labels.jsonl", [lrec(i, ["gas_pore"]) for i in ids])
    g = put(raw / "gold" / "a.png", encode(noise(60)))
    write_jsonl(raw / "gold.jsonl", [{"id": g, "image": "gold/a.png", "features": ["gas_pore"],
                                      "source": {"file": "papers/ieee-2024.pdf", "doi_from": "none", "figure": "Fig. 9"}}])
    assert build(*args(raw, tmp_path)) == 0
    rejects = [json.loads(x) for x in (tmp_path / "ds" / "rejects.jsonl").read_text().splitlines()]
    assert sorted((r["id"], r["detail"]) for r in rejects if r["reason"] == "gold_paper") == sorted(
        (ids[k], f"source paper file:papers/ieee-2024.pdf (no DOI) is a gold benchmark paper ({raw / 'gold.jsonl'}:1); "
                 "its images stay out of training") for k in (0, 1))
    assert json.loads((tmp_path / "ds" / "build.json").read_text())["gold"]["papers"] == 1


def test_a_gold_record_that_cannot_be_read_fails_the_build(tmp_path, capsys):
    raw = tmp_path / "raw"
    ids = [put(raw / "images" / f"{k}.png", encode(noise(k))) for k in range(4)]
    write_jsonl(raw / "manifest.jsonl", [mrec(i, f"images/{k}.png", f"10.1/{k}") for k, i in enumerate(ids)])
    write_jsonl(raw / "labels.jsonl", [lrec(i, ["gas_pore"]) for i in ids])
    good = put(raw / "gold" / "g.png", encode(noise(40)))
    assert build(*args(raw, tmp_path)) == 2  # no gold file at all: named
    assert capsys.readouterr().err == f"error: {raw / 'gold.jsonl'}: no such gold file\n"
    (raw / "gold" / "bad.png").write_bytes(b"not a png")
    for lines, problem in [
        (['{"id": "abc"'], f"{raw / 'gold.jsonl'}:1: malformed_json ("),
        ([{"id": good, "image": "../images/0.png", "features": []}], f"{raw / 'gold.jsonl'}:1: path_traversal (image path "),
        ([{"id": good, "image": "gold/nowhere.png", "features": []}], f"{raw / 'gold.jsonl'}:1: missing_image ("),
        ([{"id": good, "image": "gold/bad.png", "features": []}], f"{raw / 'gold.jsonl'}:1: not_an_image ("),
        ([{"id": ids[0], "image": "gold/g.png", "features": []}], f"{raw / 'gold.jsonl'}:1: id_mismatch ("),
    ]:
        write_jsonl(raw / "gold.jsonl", lines)
        assert build(*args(raw, tmp_path)) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: gold: 1 record(s) cannot be read, so the leak guard cannot check them: " + problem), err
        assert err.endswith(". Fix or remove them\n") and err.count("\n") == 1
        assert not (tmp_path / "ds").exists()


def test_not_a_fracture_surface_is_rejected_unless_kept_as_negatives(tmp_path, capsys):
    raw = tmp_path / "raw"
    ids = [put(raw / "images" / f"{k}.png", encode(noise(k))) for k in range(6)]
    write_jsonl(raw / "manifest.jsonl", [mrec(i, f"images/{k}.png", f"10.1/{k}") for k, i in enumerate(ids)])
    labels = [lrec(i, ["gas_pore"]) for i in ids]
    labels[1] = {**lrec(ids[1], []), "image_type": "not a fracture surface"}
    labels[2] = {**lrec(ids[2], ["gas_pore"]), "image_type": "Not a fracture surface"}  # features ignored
    write_jsonl(raw / "labels.jsonl", labels)
    base = ["--manifest", raw / "manifest.jsonl", "--labels", raw / "labels.jsonl", "--rotations", ""]
    assert build(*base, "--out", tmp_path / "ds") == 0
    out = capsys.readouterr().out
    summary = json.loads((tmp_path / "ds" / "build.json").read_text())
    assert summary["streams"]["mined"] == {"read": 6, "kept": 4, "rejected": {"not_fractograph": 2}}
    rej = {r["id"]: r for r in map(json.loads, (tmp_path / "ds" / "rejects.jsonl").read_text().splitlines())}
    assert rej[ids[1]]["reason"] == "not_fractograph" and rej[ids[1]]["line"] == 2
    assert rej[ids[1]]["detail"] == (f"gpt label at {raw / 'labels.jsonl'}:2: image_type 'not a fracture surface' "
                                     "(--keep-negatives keeps it as a 'Features: none' row)")
    assert "2 images labelled 'not a fracture surface' were rejected (`not_fractograph`)" in (tmp_path / "ds" / "README.md").read_text()
    assert "  negatives  2 'not a fracture surface' rejected (not_fractograph; --keep-negatives keeps them)" in out

    assert build(*base, "--out", tmp_path / "neg", "--keep-negatives") == 0
    summary = json.loads((tmp_path / "neg" / "build.json").read_text())
    assert summary["streams"]["mined"] == {"read": 6, "kept": 6, "rejected": {}}
    assert summary["config"]["keep_negatives"] is True
    rows = {r["id"]: r for f in ("train_full.json", "val.json") for r in read_rows(tmp_path / "neg" / f)}
    assert rows[ids[1]]["messages"][1]["content"] == rows[ids[2]]["messages"][1]["content"] == "Features: none"
    assert rows[ids[0]]["messages"][1]["content"] == "Features: gas_pore"
    card = (tmp_path / "neg" / "README.md").read_text()
    assert "2 images labelled 'not a fracture surface' are kept as `Features: none` rows (`--keep-negatives`)" in card
    files = {"full": "train_full.json", "no_rare": "train_no_rare.json", "no_rotation": "train_no_rotation.json",
             "mined_only": "train_mined_only.json", "val": "val.json"}
    assert summary["features"]["(none)"] == {
        name: sum(r["messages"][1]["content"] == "Features: none" for r in read_rows(tmp_path / "neg" / f))
        for name, f in files.items()}
    assert sum(summary["features"]["(none)"][n] for n in ("full", "val")) == 2
    before = tree_bytes(tmp_path / "neg")
    assert build(*base, "--out", tmp_path / "neg", "--keep-negatives", "--force") == 0
    assert tree_bytes(tmp_path / "neg") == before  # byte-identical rebuild
