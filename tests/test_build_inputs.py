"""`fracdata build` on inputs made here: the bad-input corpus, gold leaks, duplicates, manual folders."""

from __future__ import annotations

import json
import os
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.buildkit import encode, lrec, mrec, noise, put, read_rows, sha, tree_bytes, write_jsonl
from fracdata.cli import main


def bomb_png(width: int, height: int) -> bytes:
    """A real 1-bit PNG of width x height zeros: ~110 KB on disk, 900 M pixels decoded."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\x00" * (1 + (width + 7) // 8)  # filter byte + packed bits
    z = zlib.compressobj(9)
    idat = b"".join(z.compress(row * 1000) for _ in range(height // 1000)) + z.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", idat) + chunk(b"IEND", b""))


def build(*argv) -> int:
    return main(["build", "--workers", "2", *map(str, argv)])


def test_bad_input_corpus_ends_as_counted_rejects(tmp_path, capsys):
    raw, img = tmp_path / "raw", tmp_path / "raw" / "images"
    feats = ["dimple_equiaxed", "cleavage_facet"]
    man, lab, expect_kept = [], [], []

    def add(name: str, data: bytes, features=None, doi=None) -> str:
        image_id = put(img / name, data)
        man.append(mrec(image_id, f"images/{name}", doi or f"10.1/{name}"))
        lab.append(lrec(image_id, features or feats[len(lab) % 2:len(lab) % 2 + 1]))
        return image_id

    for i in range(8):
        expect_kept.append(add(f"good{i}.png", encode(noise(i))))
    tiff = (np.arange(96 * 80).reshape(80, 96) * 8).astype(np.uint16)
    expect_kept.append(add("sem16.tif", encode(Image.fromarray(tiff), "TIFF")))
    expect_kept.append(add("cmyk.jpg", encode(noise(20, mode="CMYK"), "JPEG")))
    pal = noise(21).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    expect_kept.append(add("palette.png", encode(pal, "PNG", transparency=0)))
    gif = [noise(22 + k).convert("P") for k in range(3)]
    bad = {
        "empty.png": b"",
        "truncated.png": encode(noise(30))[:-200],  # IDAT cut short
        "text.png": b"this is not an image\n",
        "one.png": encode(Image.new("L", (1, 1))),
        "bomb.png": bomb_png(30_000, 30_000),
        "anim.gif": encode(gif[0], "GIF", save_all=True, append_images=gif[1:]),
    }
    bad_ids = {name: add(name, data) for name, data in bad.items()}
    unknown_id = add("unknown.png", encode(noise(31)), features=["dimples", "banana split"])
    man.append(man[0])  # duplicate id: line 19
    missing_id = sha(b"never written")
    man.append(mrec(missing_id, "images/nowhere.png", "10.1/missing"))
    secret_id = put(tmp_path / "outside" / "secret.png", encode(noise(32)))
    man.append(mrec(secret_id, "../outside/secret.png", "10.1/traversal"))
    other_id = put(tmp_path / "outside" / "other.png", encode(noise(33)))
    os.symlink(tmp_path / "outside" / "other.png", img / "link.png")
    man.append(mrec(other_id, "images/link.png", "10.1/symlink"))
    lab += [lrec(i, ["fish_eye"]) for i in (missing_id, secret_id, other_id)]
    write_jsonl(raw / "manifest.jsonl", man + ['{"id": "abc", "image": '])
    write_jsonl(raw / "labels.jsonl", lab + ["not json"])

    assert build("--manifest", raw / "manifest.jsonl", "--labels", raw / "labels.jsonl", "--out", tmp_path / "ds") == 0
    out = capsys.readouterr().out.splitlines()
    rejects = [json.loads(line) for line in (tmp_path / "ds" / "rejects.jsonl").read_text().splitlines()]
    got = sorted((Path(r["file"]).name, r["line"], r["reason"], r.get("id")) for r in rejects)
    m, lb = "manifest.jsonl", "labels.jsonl"
    assert got == sorted([
        (m, 12, "empty_file", bad_ids["empty.png"]), (m, 13, "decode_error", bad_ids["truncated.png"]),
        (m, 14, "not_an_image", bad_ids["text.png"]), (m, 15, "too_small", bad_ids["one.png"]),
        (m, 16, "too_many_pixels", bad_ids["bomb.png"]), (m, 17, "multi_frame", bad_ids["anim.gif"]),
        (m, 18, "no_label", unknown_id), (m, 19, "duplicate_id", man[0]["id"]),
        (m, 20, "missing_image", missing_id), (m, 21, "path_traversal", secret_id),
        (m, 22, "symlink_outside_tree", other_id), (m, 23, "malformed_json", None),
        (lb, 18, "unknown_feature", unknown_id), (lb, 22, "malformed_json", None),
    ] + [(lb, 12 + k, "image_rejected", i) for k, i in enumerate(bad_ids.values())]
      + [(lb, 19 + k, "image_rejected", i) for k, i in enumerate((missing_id, secret_id, other_id))])
    details = {r["reason"]: r.get("detail") for r in rejects}
    assert details["unknown_feature"] == "unknown feature 'banana split' (not an id, name or synonym in taxonomy v1)"
    assert details["too_small"] == f"{img / 'one.png'}: 1x1: shorter side < --min-side 64"
    assert details["multi_frame"] == f"{img / 'anim.gif'}: GIF with 3 frames (animated or multi-page)"
    assert details["path_traversal"] == f"image path '../outside/secret.png' leaves {raw}"
    assert details["empty_file"] == f"{img / 'empty.png'}: the file has 0 bytes"
    assert details["duplicate_id"] == f"id already named at {raw / 'manifest.jsonl'}:1"

    summary = json.loads((tmp_path / "ds" / "build.json").read_text())
    assert summary["streams"]["mined"] == {"read": 23, "kept": 11, "rejected": {
        "decode_error": 1, "duplicate_id": 1, "empty_file": 1, "malformed_json": 1, "missing_image": 1,
        "multi_frame": 1, "no_label": 1, "not_an_image": 1, "path_traversal": 1, "symlink_outside_tree": 1,
        "too_many_pixels": 1, "too_small": 1}}
    assert summary["streams"]["labels"] == {"read": 22, "kept": 11, "rejected": {
        "image_rejected": 9, "malformed_json": 1, "unknown_feature": 1}}
    assert out[:2] == [
        "  mined   read     23  kept     11  rejected    12 (decode_error 1, duplicate_id 1, empty_file 1, "
        "malformed_json 1, missing_image 1, multi_frame 1, no_label 1, not_an_image 1, path_traversal 1, "
        "symlink_outside_tree 1, too_many_pixels 1, too_small 1)",
        "  labels  read     22  kept     11  rejected    11 (image_rejected 9, malformed_json 1, unknown_feature 1)",
    ]
    assert out[2] == "  unknown feature names: 'banana split' 1"
    # the normalised survivors: every kept image is an 8-bit L or RGB PNG
    rows = read_rows(tmp_path / "ds" / "train_no_rotation.json") + read_rows(tmp_path / "ds" / "val.json")
    assert sorted(r["id"] for r in rows) == sorted(expect_kept)
    modes = {r["id"]: Image.open(tmp_path / "ds" / r["images"][0]).mode for r in rows}
    assert modes == {**{i: "L" for i in expect_kept}, expect_kept[9]: "RGB"}  # cmyk.jpg is in colour


def test_gold_copy_rotated_and_reencoded_fails_the_build_and_keeps_the_old_output(tmp_path, capsys):
    raw = tmp_path / "raw"
    gold_im = noise(100)
    gold_id = put(raw / "gold" / "g.png", encode(gold_im))
    write_jsonl(raw / "gold.jsonl", [{"id": gold_id, "image": "gold/g.png", "features": ["fish_eye"]}])
    ids = [put(raw / "images" / f"{i}.png", encode(noise(i))) for i in range(6)]
    man = [mrec(i, f"images/{k}.png", f"10.1/{k}") for k, i in enumerate(ids)]
    lab = [lrec(i, ["gas_pore"]) for i in ids]
    args = ["--manifest", raw / "manifest.jsonl", "--labels", raw / "labels.jsonl", "--gold", raw / "gold.jsonl",
            "--out", tmp_path / "ds"]
    write_jsonl(raw / "manifest.jsonl", man)
    write_jsonl(raw / "labels.jsonl", lab)
    assert build(*args) == 0
    before = tree_bytes(tmp_path / "ds")

    leak = encode(gold_im.transpose(Image.Transpose.ROTATE_90).convert("RGB"), "JPEG", quality=80)
    leak_id = put(raw / "images" / "leak.jpg", leak)
    write_jsonl(raw / "manifest.jsonl", man + [mrec(leak_id, "images/leak.jpg", "10.1/leak")])
    write_jsonl(raw / "labels.jsonl", lab + [lrec(leak_id, ["fish_eye"])])
    capsys.readouterr()
    assert build(*args) == 2
    err = capsys.readouterr().err
    assert err.startswith(
        f"error: gold leak: 1 training image(s) are gold benchmark images or rotated/flipped/re-encoded copies of them: "
        f"{leak_id} ({raw / 'manifest.jsonl'}:7) = gold {gold_id} (rot90, phash distance ")
    assert err.endswith("). Remove them from the training inputs (or, where a person judged a pair distinct, waive it: "
                        "--waivers, docs/build.md)\n") and err.count("\n") == 1
    assert tree_bytes(tmp_path / "ds") == before
    # no temp folder left behind (.ds.lock is the one-build-per-OUT lock, kept: fracdata/files.py)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".ds.lock", "ds", "raw"]


def test_duplicates_human_copy_wins_and_manual_folder_is_matched_by_pixels(tmp_path, capsys):
    raw = tmp_path / "raw"
    a = noise(1)
    ids = [put(raw / "images" / f"{i}.png", encode(noise(i))) for i in range(1, 7)]
    # other bytes, same pixels: the same id (ids hash pixels), so the second record repeats the first
    same_pixels = put(raw / "images" / "again.png", encode(noise(2), compress_level=1))
    assert same_pixels == ids[1] and encode(noise(2), compress_level=1) != encode(noise(2))
    man = [mrec(i, f"images/{k + 1}.png", f"10.1/{k}") for k, i in enumerate(ids)]
    man.append(mrec(same_pixels, "images/again.png", "10.1/again"))
    write_jsonl(raw / "manifest.jsonl", man)
    write_jsonl(raw / "labels.jsonl", [lrec(i, ["gas_pore"]) for i in ids + [same_pixels]])
    manual = raw / "manual"
    flipped = put(manual / "flipped.jpg", encode(a.transpose(Image.Transpose.FLIP_LEFT_RIGHT), "JPEG", quality=85))
    fresh = put(manual / "sub" / "fresh.png", encode(noise(50)))
    assert put(manual / "sub" / "fresh_copy.bmp", encode(noise(50), "BMP")) == fresh  # a lossless copy: same id
    stray = manual / "notes.txt"
    stray.write_bytes(b"collected by hand\n")
    os.symlink(raw / "images" / "3.png", manual / "inside.png")  # points out of the manual folder
    write_jsonl(manual / "labels.jsonl", [lrec(flipped, ["fish_eye"], "human"), lrec(fresh, ["fish_eye"], "human")])

    assert build("--manifest", raw / "manifest.jsonl", "--labels", raw / "labels.jsonl", "--manual", manual,
                 "--out", tmp_path / "ds", "--rotations", "90") == 0
    rejects = [json.loads(x) for x in (tmp_path / "ds" / "rejects.jsonl").read_text().splitlines()]
    by_reason = {r["reason"]: (r.get("id"), r.get("detail")) for r in rejects}
    assert sorted(by_reason) == ["duplicate_id", "duplicate_image", "duplicate_label", "image_rejected", "near_duplicate",
                                 "not_an_image", "symlink_outside_tree"]
    # the human-labelled, flipped JPEG copy beats the mined original
    assert by_reason["near_duplicate"][0] == ids[0]
    assert by_reason["near_duplicate"][1].startswith(f"{raw / 'images' / '1.png'}: near copy of {flipped} (flip_lr, phash distance ")
    assert by_reason["duplicate_id"] == (ids[1], f"id already named at {raw / 'manifest.jsonl'}:2")
    assert by_reason["duplicate_image"] == (fresh, f"{manual / 'sub' / 'fresh_copy.bmp'}: same pixels after normalisation "
                                                   f"as {manual / 'sub' / 'fresh.png'}")
    assert by_reason["not_an_image"][1].startswith(f"{stray}: not a recognised image format")
    summary = json.loads((tmp_path / "ds" / "build.json").read_text())
    assert summary["streams"]["manual"] == {"read": 5, "kept": 2, "rejected": {
        "duplicate_image": 1, "not_an_image": 1, "symlink_outside_tree": 1}}
    assert summary["streams"]["mined"] == {"read": 7, "kept": 5, "rejected": {"duplicate_id": 1, "near_duplicate": 1}}
    full = read_rows(tmp_path / "ds" / "train_full.json")
    no_rare = read_rows(tmp_path / "ds" / "train_no_rare.json")
    val = read_rows(tmp_path / "ds" / "val.json")
    assert {r["aug"] for r in full} == {"none", "rot90"} and {r["aug"] for r in val} == {"none"}
    assert all(r["origin"] == "mined" for r in no_rare)
    manual_rows = [r for r in full + val if r["origin"] == "manual"]
    assert {r["id"] for r in manual_rows} == {flipped, fresh}
    assert {r["messages"][1]["content"] for r in manual_rows} == {"Features: fish_eye"}


def test_cli_errors_are_one_line_and_name_the_fix(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "m.jsonl").write_text("")
    (tmp_path / "l.jsonl").write_text("")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "thesis.tex").write_text("keep me")
    for argv, err in [
        ([], "data/synthetic/manifest.jsonl: not found; run `fracdata synth --out data/synthetic` first "
             "(or pass --manifest/--labels/--out)"),
        (["--manifest", "m.jsonl"], "--labels, --out required when inputs are given "
                                    "(or give no input arguments to build the embedded sample)"),
        (["--manifest", "m.jsonl", "--labels", "l.jsonl", "--out", "o", "--rotations", "90,45"],
         "--rotations: '45' is not one of 90, 180, 270"),
        (["--manifest", "m.jsonl", "--labels", "l.jsonl", "--out", "o", "--val-fraction", "0"],
         "--val-fraction 0.0: must be between 0 and 1 (exclusive)"),
        (["--manifest", "m.jsonl", "--labels", "nope.jsonl", "--out", "o"], "nope.jsonl: no such labels file"),
        (["--manifest", "m.jsonl", "--labels", "l.jsonl", "--out", "o"],
         "no training image survived (no records read); nothing written"),
        (["--manifest", "m.jsonl", "--labels", "l.jsonl", "--out", "full"],
         "full: exists and is not a fracdata build (no build.json); remove it or choose another --out"),
    ]:
        assert main(["build", *argv]) == 2
        assert capsys.readouterr().err == f"error: {err}\n"
    assert (tmp_path / "full" / "thesis.tex").read_text() == "keep me"
    # no "o", no temp folder, no o.rejects.jsonl (nothing was rejected); the builds that got as far
    # as the lock leave its file
    assert sorted(p.name for p in tmp_path.iterdir()) == [".full.lock", ".o.lock", "full", "l.jsonl", "m.jsonl"]
