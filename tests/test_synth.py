"""`fracdata synth`: counts, record validity, determinism, leak-freedom, orientation and learnability."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fracdata.cli import main
from fracdata.images import image_id
from fracdata.records import GoldRecord, LabelRecord, ManifestRecord, read_jsonl, sha256_file
from fracdata.synth.corpus import COMMON, PAIRS, RARE, generate

# Exact plan for n=120 (1% fish_eye -> 1; 30% of the other 119 are pairs -> 36, 6 per pair;
# 83 singles over 6 features -> 14,14,14,14,14,13) and for gold n=30 (8% fish_eye -> 2;
# 8 pairs -> 2,2,1,1,1,1; 20 singles -> 4,4,3,3,3,3).
MANIFEST_FEATURES = {"cleavage_facet": 20, "dimple_equiaxed": 26, "fish_eye": 1, "gas_pore": 26,
                     "ig_facet": 20, "secondary_crack": 37, "striation_ductile": 26}
GOLD_FEATURES = {"cleavage_facet": 5, "dimple_equiaxed": 8, "fish_eye": 2, "gas_pore": 6,
                 "ig_facet": 4, "secondary_crack": 8, "striation_ductile": 5}


def _records(path, model):
    rows = list(read_jsonl(path, model, "test"))
    bad = [r for _, r in rows if not isinstance(r, model)]
    assert bad == []
    return [r for _, r in rows]


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _features(records) -> dict[str, int]:
    out: dict[str, int] = {}
    for r in records:
        for f in r.features:
            out[f] = out.get(f, 0) + 1
    return dict(sorted(out.items()))


def orientation_deg(path) -> float:
    """Direction of the strongest fine periodic pattern (periods 2.5-8 px), 0-180 deg; 0 = waves along x.

    The wave vector of striations is the image gradient direction; taking the spectral peak
    rather than the mean gradient ignores the odd bright tear ridge and pores or cracks.
    """
    a = np.asarray(Image.open(path), dtype=np.float64)
    a = (a - a.mean()) * np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    power = np.abs(np.fft.fft2(a)) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(a.shape[0]), np.fft.fftfreq(a.shape[1]), indexing="ij")
    f = np.hypot(fx, fy)
    k = np.argmax(np.where((f > 1 / 8) & (f < 1 / 2.5), power, 0))
    return float(np.degrees(np.arctan2(fy.flat[k], fx.flat[k])) % 180)


def _off(angle, target) -> float:
    return abs((angle - target + 90) % 180 - 90)


def test_records_counts_and_ids(synth_small):
    man = _records(synth_small / "manifest.jsonl", ManifestRecord)
    lab = _records(synth_small / "labels.jsonl", LabelRecord)
    gold = _records(synth_small / "gold.jsonl", GoldRecord)
    mman = _records(synth_small / "manual/manifest.jsonl", ManifestRecord)
    mlab = _records(synth_small / "manual/labels.jsonl", LabelRecord)
    assert (len(man), len(lab), len(gold), len(mman), len(mlab)) == (120, 120, 30, 12, 12)
    # every id is the sha256 of its file, and the images folders hold exactly the listed files
    for base, recs, folder in ((synth_small, man, "images"), (synth_small / "manual", mman, "images"),
                               (synth_small, gold, "gold")):
        assert [image_id(base / r.image) for r in recs] == [r.id for r in recs]
        assert sorted(p.name for p in (base / folder).iterdir()) == sorted(r.image.split("/")[-1] for r in recs)
        assert all(r.image in (f"{folder}/{r.id}.png", f"{folder}/{r.id}.jpg") for r in recs)
    assert [r.id for r in lab] == [r.id for r in man] and [r.id for r in mlab] == [r.id for r in mman]
    assert {r.labeler.kind for r in lab} == {"synthetic"} and {r.labeler.model for r in lab} == {"fracdata-synth"}
    assert {r.labeler.kind for r in mlab} == {"human"} and {tuple(r.features) for r in mlab} == {(RARE,)}
    assert _features(lab) == MANIFEST_FEATURES and _features(gold) == GOLD_FEATURES
    # the rare feature is scarce in the mined manifest (1 of 120) and the manual folder adds it
    assert MANIFEST_FEATURES[RARE] / len(man) < 0.02
    # 8-bit grayscale, 96 or 128 px a side
    ims = [Image.open(synth_small / r.image) for r in man]
    assert {im.mode for im in ims} == {"L"} and {im.size for im in ims} == {(96, 96), (96, 128), (128, 96), (128, 128)}
    # labels are single features or one of the physically sensible pairs, in taxonomy order
    assert {tuple(r.features) for r in lab} == {(f,) for f in (*COMMON, RARE)} | set(PAIRS)
    # papers: 5-15 images, more where a last series (up to 9 tiles) does not split (a short last paper
    # joins the one before), figures "Fig. k" with panels a-d (a-i for 9 tiles), licence CC0
    per_paper: dict[str, int] = {}
    for r in man:
        per_paper[r.source.doi] = per_paper.get(r.source.doi, 0) + 1
        assert r.source.licence == "CC0-1.0" and r.source.figure.startswith("Fig. ") and r.source.panel in "abcdefghi"
        assert r.caption.startswith(r.source.figure + ".") and 1 <= len(r.excerpts) <= 2
        assert f"{r.source.figure}{r.source.panel}" in r.excerpts[0]
    assert all(5 <= k <= 15 + 8 for k in per_paper.values()) and len(per_paper) >= 8
    summary = json.loads((synth_small / "synth.json").read_text())
    assert summary["counts"]["features"] == {"manifest": MANIFEST_FEATURES, "manual": {RARE: 12}, "gold": GOLD_FEATURES}
    assert summary["counts"]["papers"]["manifest"] == len(per_paper)
    assert summary["files"]["gold.jsonl"] == sha256_file(synth_small / "gold.jsonl")


def test_overlays_series_tiles_and_copies_as_in_the_literature(synth_small):
    """What real figures carry (the project's shared notes on real figures), with figures.jsonl as the truth."""
    from fracdata.dataset import masks
    from fracdata.synth import overlays

    truth = [json.loads(x) for x in (synth_small / "figures.jsonl").read_text().splitlines()]
    man = {r.id: r for r in _records(synth_small / "manifest.jsonl", ManifestRecord)}
    summary = json.loads((synth_small / "synth.json").read_text())["counts"]
    assert summary["units"]["manifest"] == {"copy": 8, "roi": 2, "single": 93, "tiles4": 8, "zoom2": 6, "zoom3": 3}
    assert summary["data_bar"] == {"manifest": 54, "manual": 9, "gold": 23}
    arrays = {t["id"]: np.asarray(Image.open(synth_small / t["image"])) for t in truth}
    # a data bar along the bottom: the overlay masks' detector finds it on every unturned PNG that has one
    barred = [t for t in truth if t["bar_rows"] and t["turn"] == 0 and t["image"].endswith(".png") and t["unit"] != "tiles4"]
    assert len(barred) >= 60
    assert all(0 <= masks.bars(arrays[t["id"]])[1] - t["bar_rows"] <= 2 for t in barred)
    # fields from one microscope at one magnification and width share the strip pixel for pixel, across splits
    by_bar: dict[tuple, list] = {}
    for t in barred:
        a = arrays[t["id"]]
        by_bar.setdefault((t["microscope"], t["mag"], a.shape[1]), []).append((t["split"], a[-t["bar_rows"]:].tobytes()))
    shared = [v for v in by_bar.values() if len(v) > 1]
    assert shared and all(len({b for _, b in v}) == 1 for v in shared)
    assert any({"gold", "manifest"} <= {sp for sp, _ in v} for v in shared)  # the guard's hardest case is in the corpus
    assert {"(a)", "a", "A"} >= {overlays.Lettering.draw_from(np.random.default_rng(k)).form for k in range(20)}
    # tiles: 4 of one parent (source.parent set, as mining sets it), each a quarter of one raw field
    parents: dict[str, list] = {}
    for t in truth:
        if t["unit"] == "tiles4":
            assert man[t["id"]].source.parent == t["parent"] and t["parent"].startswith(man[t["id"]].source.doi)
            parents.setdefault(t["parent"], []).append(arrays[t["id"]])
    assert len(parents) == 2 and all(len(v) == 4 for v in parents.values())
    for tiles in parents.values():  # the 2 x 2 tiles fit back together into one field: no seam between them
        a, b = tiles[0].astype(float), tiles[1].astype(float)
        assert abs(a[:-12, -1] - b[:-12, 0]).mean() < abs(a[:-12, -1] - a[:-12, 0]).mean()
    assert all(man[t["id"]].source.parent is None for t in truth if t["split"] == "manifest" and t["unit"] != "tiles4")
    # zoom series: views of one field, each a scaled crop of the next (checked by the guard's test suite);
    # copies: the same picture as PNG and as JPEG, within a few phash bits
    import imagehash

    copies: dict[tuple, list] = {}
    for t in truth:
        if t["unit"] == "copy" and t["split"] == "manifest":
            r = man[t["id"]]
            copies.setdefault((r.source.doi, r.source.figure, r.source.panel), []).append(t)
    assert len(copies) == 4 and all(sorted(x["image"][-3:] for x in v) == ["jpg", "png"] for v in copies.values())
    for v in copies.values():
        h = [imagehash.phash(Image.fromarray(arrays[x["id"]])) for x in v]
        assert h[0] - h[1] <= 4


def test_gold_is_disjoint_and_separate(synth_small):
    ids = {r.id for r in _records(synth_small / "manifest.jsonl", ManifestRecord)}
    manual = {r.id for r in _records(synth_small / "manual/manifest.jsonl", ManifestRecord)}
    gold = _records(synth_small / "gold.jsonl", GoldRecord)
    assert ids.isdisjoint(r.id for r in gold) and manual.isdisjoint(r.id for r in gold) and ids.isdisjoint(manual)
    assert all(r.note.startswith("synthetic gold; 10.5555/synth-gold.") for r in gold)


@pytest.mark.slow
def test_same_seed_is_byte_identical_other_seed_differs(synth_small, tmp_path):
    again = generate(tmp_path / "again", seed=0, n=120, n_gold=30, n_manual=12)
    assert again["out"] == str(tmp_path / "again")
    assert _tree(tmp_path / "again") == _tree(synth_small)
    generate(tmp_path / "other", seed=1, n=120, n_gold=30, n_manual=12)
    other = _tree(tmp_path / "other")
    assert set(other) != set(_tree(synth_small))  # file names are content hashes
    assert set(other).isdisjoint(k for k in _tree(synth_small) if k.endswith(".png"))
    # regenerating into an earlier output replaces it: no stale images from seed 0 stay behind
    generate(tmp_path / "again", seed=1, n=120, n_gold=30, n_manual=12)
    assert _tree(tmp_path / "again") == other


def test_orientation_canonical_and_gold_all(tmp_path, synth_small):
    s = generate(tmp_path / "c", seed=3, n=120, n_gold=80, n_manual=0, orientation="canonical", gold_orientation="all")
    assert s["counts"]["gold_rotations"] == {"0": 20, "90": 20, "180": 20, "270": 20}
    labels = {r.id: r.features for r in _records(tmp_path / "c/labels.jsonl", LabelRecord)}
    man = [r for r in _records(tmp_path / "c/manifest.jsonl", ManifestRecord) if labels[r.id] == ["striation_ductile"]]
    # canonical: striations run across +x, so the image gradient points along x (within the arc curvature)
    train_angles = [orientation_deg(tmp_path / "c" / r.image) for r in man]
    assert len(train_angles) == 14 and max(_off(a, 0) for a in train_angles) < 25, train_angles
    gold = [r for r in _records(tmp_path / "c/gold.jsonl", GoldRecord) if r.features == ["striation_ductile"]]
    turns = [int(r.note.split("turned ")[1].split(" deg")[0]) for r in gold]
    offs = [_off(orientation_deg(tmp_path / "c" / r.image), t % 180) for r, t in zip(gold, turns)]
    assert len(gold) >= 6 and {t % 180 for t in turns} == {0, 90} and max(offs) < 25, list(zip(turns, offs))
    # the default (random) orientation spreads striations over all directions
    labels0 = {r.id: r.features for r in _records(synth_small / "labels.jsonl", LabelRecord)}
    rand = [orientation_deg(synth_small / r.image) for r in _records(synth_small / "manifest.jsonl", ManifestRecord)
            if labels0[r.id] == ["striation_ductile"]]
    assert sum(_off(a, 0) > 30 for a in rand) >= len(rand) // 3, rand


def _cheap_features(path) -> np.ndarray:
    """Radial log-FFT profile + intensity histogram + an 8x8 thumbnail: 112 numbers."""
    im = Image.open(path)
    a = np.asarray(im.resize((64, 64), Image.Resampling.BOX), dtype=np.float64)
    a = (a - a.mean()) / (a.std() + 1e-6)
    mag = np.log1p(np.abs(np.fft.fftshift(np.fft.fft2(a))))
    yy, xx = np.mgrid[-32:32, -32:32]
    r = np.sqrt(xx**2 + yy**2).astype(int).ravel()
    radial = (np.bincount(r, mag.ravel()) / np.bincount(r))[:32]
    hist = np.histogram(np.asarray(im), bins=16, range=(0, 256))[0] / (im.size[0] * im.size[1])
    thumb = np.asarray(im.resize((8, 8), Image.Resampling.BOX), dtype=np.float64).ravel() / 255
    return np.concatenate([radial, hist, thumb])


@pytest.mark.slow
def test_single_feature_classes_are_learnable_but_not_trivial(tmp_path):
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    generate(tmp_path / "s", seed=5, n=480, n_gold=200, n_manual=60)

    def singles(jsonl, model, base, labels=None):
        out = []
        for r in _records(jsonl, model):
            feats = labels[r.id] if labels else r.features
            if len(feats) == 1:
                out.append((_cheap_features(base / r.image), feats[0]))
        return out

    lab = {r.id: r.features for r in _records(tmp_path / "s/labels.jsonl", LabelRecord)}
    mlab = {r.id: r.features for r in _records(tmp_path / "s/manual/labels.jsonl", LabelRecord)}
    train = singles(tmp_path / "s/manifest.jsonl", ManifestRecord, tmp_path / "s", lab)
    train += singles(tmp_path / "s/manual/manifest.jsonl", ManifestRecord, tmp_path / "s/manual", mlab)
    test = singles(tmp_path / "s/gold.jsonl", GoldRecord, tmp_path / "s")
    clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
    clf.fit(np.array([x for x, _ in train]), [y for _, y in train])
    acc = float(np.mean(clf.predict(np.array([x for x, _ in test])) == np.array([y for _, y in test])))
    print(f"cheap-feature logistic regression: {len(train)} train / {len(test)} held-out gold singles, "
          f"7 classes, accuracy {acc:.3f} (chance ~0.14)")
    assert len(test) == 145  # 200 gold: 16 fish_eye + 129 other singles (55 pairs left out)
    assert 0.45 <= acc <= 0.95


def test_cli_prints_counts_and_refuses_foreign_folder(tmp_path, capsys):
    assert main(["synth", "--out", str(tmp_path / "cli"), "--n", "12", "--n-gold", "6", "--n-manual", "2",
                 "--seed", "2", "--orientation", "canonical", "--gold-orientation", "all"]) == 0
    lines = capsys.readouterr().out.splitlines()
    d = tmp_path / "cli"
    assert lines[:-1] == [
        f"synth: wrote 12 images in 1 papers to {d}/manifest.jsonl + labels.jsonl (oracle, synthetic), orientation canonical",
        f"synth: wrote 2 manual fish_eye images to {d}/manual/ (labeler human)",
        (f"synth: wrote 6 gold images to {d}/gold.jsonl (seed stream 2, orientation all; 0 deg: 2, 90 deg: 2, "
         "180 deg: 1, 270 deg: 1); disjoint from training by sha256"),
        ("synth: 2 images carry a data bar of microscopes shared by all splits; 0 in zoom series, 0 tiles "
         f"(source.parent set), 0 in ROI pairs, 0 in PNG + JPEG copies ({d}/figures.jsonl)"),
        (f"synth: wrote {d}/teacher/random.jsonl + random.gold.jsonl: simulated teacher (random errors); agrees with "
         "the oracle on 10/12 training images (0.833) and 5/6 gold (0.833)"),
        "  feature               manifest  manual   gold",
        "  dimple_equiaxed              4       0      3",
        "  cleavage_facet               3       0      1",
        "  ig_facet                     2       0      1",
        "  striation_ductile            1       0      1",
        "  gas_pore                     2       0      1",
        "  secondary_crack              4       0      1",
        "  fish_eye                     0       2      0",
        "  two-feature images           4       0      2",
    ]
    assert lines[-1].startswith("synth: 20 images in ") and lines[-1].endswith(f"config and counts in {d}/synth.json")
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "keep.txt").write_text("mine")
    assert main(["synth", "--out", str(foreign), "--n", "3"]) == 2
    assert capsys.readouterr().err == (f"error: {foreign}: exists, is not empty and holds no synth.json; "
                                       "refusing to replace it\n")
    assert (foreign / "keep.txt").read_text() == "mine" and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    assert main(["synth", "--out", str(tmp_path / "neg"), "--n", "-1"]) == 2
    assert capsys.readouterr().err == "error: synth: n must be >= 0, got -1\n"
