"""The builder's parts, each on inputs made here: normalisation, hashes, split, rules, labels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from tests.support.buildkit import encode, lrec, noise, write_jsonl
from fracdata.dataset.dedup import close_pairs, gold_matches, near_duplicates
from fracdata.errors import FracdataError
from fracdata.dataset.decode import dihedral_hashes
from fracdata.images import Bounds, ImageReject, load_normalised
from fracdata.dataset.sharegpt import check_rows, make_row
from fracdata.dataset.inputs import Ledger, read_labels
from fracdata.dataset.split import split_groups
from fracdata.taxonomy import load_taxonomy


def test_16bit_tiff_is_stretched_to_8bit_exactly():
    """The documented percentile stretch (docs/formats.md): 0.1st..99.9th percentile -> 0..255, clipped."""
    a = (1000 + 12 * np.arange(64 * 80).reshape(80, 64)).astype(np.uint16)  # 1,000..62,428: a 16-bit ramp
    data = encode(Image.fromarray(a), "TIFF")
    assert Image.open(io.BytesIO(data)).mode == "I;16"
    im = load_normalised(data)
    lo, hi = np.percentile(a.astype(np.float64), [0.1, 99.9])
    expected = np.rint(np.clip((a.astype(np.float64) - lo) * (255.0 / (hi - lo)), 0, 255)).astype(np.uint8)
    assert im.mode == "L" and np.array_equal(np.asarray(im), expected)
    assert abs(lo - (1000 + 12 * 0.001 * (64 * 80 - 1))) < 1e-9  # numpy's linear interpolation at rank 5.119


def test_palette_png_with_alpha_is_composited_over_white():
    idx = np.tile(np.arange(4, dtype=np.uint8), (64, 16))  # 64 x 64, columns cycle 0..3
    im = Image.frombytes("P", (64, 64), idx.tobytes())
    im.putpalette([255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30] + [0] * 756)
    data = encode(im, "PNG", transparency=bytes([255, 255, 0, 128]))  # index 2 transparent, 3 half
    out = np.asarray(load_normalised(data))
    assert out.shape == (64, 64, 3)
    # half-transparent (10,20,30) over white: (c*128 + 255*127)/255, as PIL's alpha_composite rounds
    assert [tuple(out[0, i]) for i in range(4)] == [(255, 0, 0), (0, 255, 0), (255, 255, 255), (132, 137, 142)]


def test_exif_orientation_is_applied_then_dropped():
    im = noise(1, size=(96, 64))
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    out = load_normalised(encode(im, "PNG", exif=exif.tobytes()))
    assert out.size == (64, 96)
    assert np.array_equal(np.asarray(out), np.rot90(np.asarray(im), k=-1))
    assert not out.getexif()


def test_cmyk_jpeg_becomes_rgb_and_gray_rgb_becomes_l():
    data = encode(noise(2, mode="CMYK"), "JPEG", quality=90)
    ref = Image.open(io.BytesIO(data)).convert("RGB")
    out = load_normalised(data)
    assert out.mode == "RGB" and np.array_equal(np.asarray(out), np.asarray(ref))
    gray = noise(3)
    out = load_normalised(encode(gray.convert("RGB"), "PNG"))
    assert out.mode == "L" and np.array_equal(np.asarray(out), np.asarray(gray))


@pytest.mark.parametrize("size,reason,detail", [
    ((40, 200), "too_small", "40x200: shorter side < --min-side 64"),
    ((64, 2000), "extreme_aspect_ratio", "64x2000: aspect ratio > --max-aspect 20"),
    ((3000, 3000), "too_many_pixels", "3000x3000 = 9000000 pixels > --max-pixels 5000000"),
])
def test_size_bounds(size, reason, detail):
    data = encode(Image.new("L", size, 7), "PNG")
    with pytest.raises(ImageReject) as e:
        load_normalised(data, Bounds(min_side=64, max_pixels=5_000_000, max_aspect=20))
    assert (e.value.reason, e.value.detail) == (reason, detail)


def test_dihedral_hashes_are_imagehash_phash_of_each_transform():
    import imagehash

    from fracdata.dataset.decode import DIHEDRAL

    for im in (noise(5), noise(6, size=(120, 64), mode="RGB")):
        expected = [int(str(imagehash.phash(im if op is None else im.transpose(op))), 16) for op in DIHEDRAL.values()]
        assert dihedral_hashes(im) == expected


def test_near_copies_are_found_across_rotations_flips_and_jpeg():
    base = noise(10)
    others = [noise(s) for s in range(11, 16)]
    variants = {
        "rot90": base.transpose(Image.Transpose.ROTATE_90),
        "flip_lr": base.transpose(Image.Transpose.FLIP_LEFT_RIGHT),
        "transverse": base.transpose(Image.Transpose.TRANSVERSE),
    }
    h_base = dihedral_hashes(base)
    for name, im in variants.items():
        copy = load_normalised(encode(im.convert("RGB"), "JPEG", quality=70))
        train = {"copy": dihedral_hashes(copy), **{f"other{k}": dihedral_hashes(o) for k, o in enumerate(others)}}
        (m,) = gold_matches({"gold": h_base}, train, 6)
        assert (m.kept, m.other, m.transform) == ("gold", "copy", name) and m.distance <= 4
    # unrelated noise: nothing within 6 bits, and greedy dedup keeps the earlier of a pair
    hashes = [dihedral_hashes(o) for o in others]
    assert close_pairs(hashes, [h[0] for h in hashes], 6, only_upper=True) == []
    order = {"base": h_base, **{f"other{k}": h for k, h in enumerate(hashes)}, "rot90": dihedral_hashes(variants["rot90"])}
    dropped = near_duplicates(order, 6)
    assert {i: (m.kept, m.distance, m.transform) for i, m in dropped.items()} == {"rot90": ("base", 0, "rot90")}


def test_split_is_grouped_seeded_and_puts_rare_features_on_both_sides():
    items = []
    for g in range(40):  # 40 papers of 1..4 images
        feats = ["fish_eye"] if g in (3, 17, 29) else ["dimple_equiaxed"]
        items += [(f"p{g}-{i}", f"doi:10.1/p{g}", feats) for i in range(1 + g % 4)]
    side = split_groups(items, 0.1, seed=0, class_order=load_taxonomy().ids)
    by_group = {}
    for item_id, group, _ in items:
        by_group.setdefault(group, set()).add(side[item_id])
    assert all(len(s) == 1 for s in by_group.values())  # no paper straddles the split
    rare = {side[i] for i, g, f in items if f == ["fish_eye"]}
    assert rare == {"train", "val"}
    n_val = sum(1 for s in side.values() if s == "val")
    assert n_val == round(0.1 * len(items))  # 100 images -> 10 in validation
    assert split_groups(items, 0.1, seed=0, class_order=load_taxonomy().ids) == side
    assert split_groups(items, 0.1, seed=1, class_order=load_taxonomy().ids) != side


def test_rows_that_llamafactory_would_skip_are_refused(tmp_path):
    tax = load_taxonomy()
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(b"x")
    good = make_row("id1", "a", ["fish_eye"], tax, "none", "mined")
    assert good["messages"][1]["content"] == "Features: fish_eye"
    check_rows([good], tmp_path, "train_full.json")
    bad_roles = {**good, "messages": good["messages"][::-1]}
    two_images = {**good, "images": ["images/a.png", "images/a.png"]}
    missing = {**good, "images": ["images/b.png"]}
    for row, problem in [
        (bad_roles, "roles ['assistant', 'user'] are not user/assistant pairs"),
        (two_images, "1 <image> tokens for 2 images (see fracdata/templates/prompt.j2)"),
        (missing, "image file images/b.png is missing"),
    ]:
        with pytest.raises(FracdataError) as e:
            check_rows([good, row], tmp_path, "train_full.json")
        assert str(e.value) == f"train_full.json row 1 (id id1): {problem}; LlamaFactory would skip or fail on it"


def test_labels_human_overrides_gpt_and_unknown_names_are_rejected(tmp_path):
    a, b, c = "a" * 64, "b" * 64, "c" * 64
    gpt = write_jsonl(tmp_path / "gpt.jsonl", [
        lrec(a, ["Dimples"]), lrec(b, ["fatigue striations", "banana split"]), lrec(c, ["river lines"]),
        lrec(c, ["cleavage"]),
    ])
    human = write_jsonl(tmp_path / "manual" / "labels.jsonl", [lrec(a, ["fish eye"], "human"), lrec(b, [], "gpt")])
    ledger = Ledger()
    chosen = read_labels([(gpt, False), (human, True)], load_taxonomy(), ledger)
    assert {k: (v.features, v.kind, v.line) for k, v in chosen.items()} == {
        a: (("fish_eye",), "human", 1), c: (("river_pattern",), "gpt", 3)}
    got = [(r.file, r.line, r.reason, r.detail) for _, r in ledger.rejects]
    assert got == [
        (str(gpt), 2, "unknown_feature", "unknown feature 'banana split' (not an id, name or synonym in taxonomy v1)"),
        (str(human), 2, "manual_label_not_human", "labeler.kind is 'gpt'; the manual collection is human-labelled"),
        (str(gpt), 1, "overridden_by_human", f"human label at {human}:1 wins (features ['dimple_equiaxed'] vs ['fish_eye'])"),
        (str(gpt), 4, "duplicate_label", f"gpt label at {gpt}:3 wins (features ['cleavage_facet'] vs ['river_pattern'])"),
    ]
    assert ledger.read["labels"] == 6 and ledger.unknown_names == {"banana split": 1}


def test_save_png_replaces_a_truncated_file_and_leaves_no_temporary(tmp_path):
    from fracdata.images import encode_png, pixel_id, save_png

    im = noise(1, (64, 64))
    data = encode_png(im)
    (tmp_path / f"{pixel_id(im)}.png").write_bytes(data[:50])  # left by a killed run
    image = save_png(im, tmp_path)
    assert image == pixel_id(im)
    assert (tmp_path / f"{image}.png").read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == [f"{image}.png"]


def test_papers_that_share_a_parent_are_one_split_group():
    from fracdata.dataset.split import groups

    keys = {"a1": ("doi:10.1/a", None), "a2": ("doi:10.1/a", "raw/field-1.tif"), "b1": ("doi:10.1/b", "raw/field-1.tif"),
            "c1": ("doi:10.1/c", "raw/field-2.tif"), "d1": ("mined:d1", "raw/field-2.tif"), "e1": ("doi:10.1/e", None)}
    assert groups(keys) == {"a1": "doi:10.1/a", "a2": "doi:10.1/a", "b1": "doi:10.1/a",
                            "c1": "doi:10.1/c", "d1": "doi:10.1/c", "e1": "doi:10.1/e"}
    no_parents = {k: (paper, None) for k, (paper, _) in keys.items()}
    assert groups(no_parents) == {k: paper for k, (paper, _) in no_parents.items()}  # the old split, unchanged
