"""`fracdata mine` on PDFs made here with reportlab; shards, reruns, merge; mine -> build."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from fracdata.cli import main
from fracdata.mine.pdf import cited_figures
from fracdata.mine.pipeline import Settings, mine
from tests.support.pdfs import grid, texture, write_pdf
from fracdata.images import image_id

LICENCE = ("This is an open access article under the CC BY license (http://creativecommons.org/licenses/by/4.0/). "
           "https://doi.org/10.1016/j.ijfatigue.2020.105123")
P_CITE_1 = "The crack started at a surface pit; the fracture surface in Fig. 1 shows fatigue striations near it."
P_CITE_BOTH = "As Figs. 1 and 2 show, the overload zone is covered in dimples."
CAPTION_1 = "Fig. 1. SEM fractograph of the fatigue fracture surface near the origin."
CAPTION_2 = "Fig. 2. Overload zone: (a) dimples; (b) shear lip; (c) cleavage facets; (d) tearing ridges."


def paper(path: Path, seed: int = 0, **kw) -> dict[str, np.ndarray]:
    """A two-page paper: Fig. 1 (one image) on page 1, Fig. 2 (a 2x2 grid) on page 2, a logo without caption."""
    fig1 = texture(seed, (300, 200))
    panels = [texture(seed + 10 + i, (160, 120)) for i in range(4)]
    logo = texture(seed + 99, (40, 40))
    write_pdf(path, [
        [("p", "Fatigue failure of a crankshaft. " + LICENCE), ("p", P_CITE_1), ("fig", fig1, CAPTION_1),
         ("p", "A paragraph about loads, citing nothing."), ("p", P_CITE_BOTH)],
        [("fig", grid(panels, cols=2, gutter=12), CAPTION_2), ("p", "Fig. 2 shows the final overload."),
         ("fig", logo, "Publisher logo")],
    ], title="Fatigue failure of a crankshaft", **kw)
    return {"Fig. 1": np.asarray(fig1), **{f"Fig. 2{p}": np.asarray(im) for p, im in zip("abcd", panels)}}


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_pdf_figures_captions_excerpts(tmp_path):
    expected = paper(tmp_path / "crank.pdf")
    res = mine([str(tmp_path / "crank.pdf")], tmp_path / "out", Settings())
    recs = read(tmp_path / "out" / "manifest.jsonl")
    source = {"doi": "10.1016/j.ijfatigue.2020.105123", "doi_from": "first_page",
              "title": "Fatigue failure of a crankshaft",
              "licence": "CC BY 4.0", "url": "https://doi.org/10.1016/j.ijfatigue.2020.105123", "file": "crank.pdf"}
    panel_text = {"a": "(a) dimples", "b": "(b) shear lip", "c": "(c) cleavage facets", "d": "(d) tearing ridges."}
    want = [(expected["Fig. 1"], {"source": {**source, "figure": "Fig. 1", "page": 1}, "caption": CAPTION_1,
                                  "excerpts": [P_CITE_1, P_CITE_BOTH]})]
    want += [(expected[f"Fig. 2{p}"], {"source": {**source, "figure": "Fig. 2", "page": 2, "panel": p},
                                       "caption": f"Fig. 2. Overload zone: {t}",
                                       "excerpts": [P_CITE_BOTH, "Fig. 2 shows the final overload."]})
             for p, t in panel_text.items()]
    assert len(recs) == len(want)
    for rec, (pixels, fields) in zip(recs, want):
        path = tmp_path / "out" / rec["image"]
        assert image_id(path) == rec["id"] and rec["image"] == f"images/{rec['id']}.png"
        assert np.array_equal(np.asarray(Image.open(path)), pixels)  # lossless: the embedded pixels, exactly
        assert rec == {"id": rec["id"], "image": rec["image"], **fields}
    assert read(tmp_path / "out" / "rejects.jsonl") == [
        {"stage": "mine", "file": "crank.pdf", "reason": "no_caption",
         "detail": f"image (page 2): {_logo_name(tmp_path / 'crank.pdf')} on page 2: no 'Fig. N' caption next to it"}]
    assert (res.counts["pages"], res.counts["figures"], res.counts["images"], res.counts["kept"]) == (2, 3, 5, 5)


def _logo_name(pdf: Path) -> str:
    from pypdf import PdfReader

    page = PdfReader(pdf).pages[1]  # named by its XObject (the miner decodes no image to name it)
    return next(k.lstrip("/") for k in page.images.keys() if page.images[k].image.size == (40, 40))


def test_broken_pdfs_are_counted_rejects(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    paper(src / "locked.pdf", user_password="secret")
    (src / "corrupt.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> garbage")
    write_pdf(src / "text-only.pdf", [[("p", "Only text, " + LICENCE)]])
    res = mine([str(src)], tmp_path / "out", Settings())
    rejects = read(tmp_path / "out" / "rejects.jsonl")
    assert [(r["file"], r["reason"]) for r in rejects] == [
        ("src/corrupt.pdf", "corrupt_pdf"), ("src/locked.pdf", "encrypted_pdf"), ("src/text-only.pdf", "no_images")]
    assert rejects[1]["detail"] == "encrypted with a user password"
    assert rejects[2]["detail"] == "no embedded images in 1 page(s)"
    assert dict(res.reasons) == {"corrupt_pdf": 1, "encrypted_pdf": 1, "no_images": 1}
    assert res.counts["kept"] == 0 and read(tmp_path / "out" / "manifest.jsonl") == []


def test_two_column_page(tmp_path):
    """Two figures side by side, each captioned in its own column; text cites them per column."""
    from reportlab.lib.utils import ImageReader
    from reportlab.pdfgen import canvas

    c = canvas.Canvas(str(tmp_path / "two.pdf"), pagesize=(595, 842))
    c.setFont("Helvetica", 9)
    for x, n in ((40, 1), (310, 2)):
        c.drawString(x, 800, f"Column text: Fig. {n} shows dimples.")
        c.drawImage(ImageReader(texture(n, (240, 180))), x, 500, width=240, height=180)
        c.drawString(x, 485, f"Fig. {n}. SEM fractograph of specimen {n},")
        c.drawString(x, 474, "second line of the caption.")
    c.drawString(40, 300, "CC BY 4.0")
    c.showPage()
    c.save()
    mine([str(tmp_path / "two.pdf")], tmp_path / "out", Settings())
    assert [(r["source"]["figure"], r["caption"], r["excerpts"]) for r in read(tmp_path / "out" / "manifest.jsonl")] == [
        (f"Fig. {n}", f"Fig. {n}. SEM fractograph of specimen {n}, second line of the caption.",
         [f"Column text: Fig. {n} shows dimples."]) for n in (1, 2)]


def test_cited_figures():
    assert cited_figures("see Fig. 3b and Figs. 5-7, also Figure 10 (Figs. 1, 2 and 4)") == {1, 2, 3, 4, 5, 6, 7, 10}
    assert cited_figures("figure of merit; Table 2") == set()


def test_shards_rerun_and_merge(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        paper(src / f"p{i}.pdf", seed=100 * i)
    shutil.copy(src / "p0.pdf", src / "p3-copy.pdf")  # the same paper twice: merge must dedup
    assert main(["mine", str(src), "--out", str(tmp_path / "all")]) == 0
    for i in (0, 1):
        assert main(["mine", str(src), "--shard", f"{i}/2", "--out", str(tmp_path / f"s{i}")]) == 0
    # round robin over the sorted sources
    assert [json.loads((tmp_path / f"s{i}" / "mine.json").read_text())["sources"] for i in (0, 1)] == \
        [["src/p0.pdf", "src/p2.pdf"], ["src/p1.pdf", "src/p3-copy.pdf"]]
    capsys.readouterr()
    assert main(["mine", "merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "merged")]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "mine merge: 2 manifests, 20 records read = 15 kept + 5 rejected"
    whole, merged = read(tmp_path / "all" / "manifest.jsonl"), read(tmp_path / "merged" / "manifest.jsonl")
    assert sorted(merged, key=lambda r: r["id"]) == sorted(whole, key=lambda r: r["id"])
    for rec in merged:
        assert image_id(tmp_path / "merged" / rec["image"]) == rec["id"]
    dup = [r for r in read(tmp_path / "merged" / "rejects.jsonl") if r["reason"] == "duplicate_image"]
    assert len(dup) == 5 and {r["stage"] for r in dup} == {"mine-merge"}
    assert len(read(tmp_path / "merged" / "evidence.jsonl")) == 15
    # a shard image that no longer matches its id is refused, never linked
    shutil.copytree(tmp_path / "s1", tmp_path / "s1bad")
    victim = read(tmp_path / "s1bad" / "manifest.jsonl")[0]
    Image.new("L", (80, 80), 7).save(tmp_path / "s1bad" / victim["image"])  # other pixels under its name
    assert main(["mine", "merge", str(tmp_path / "s1bad"), "--out", str(tmp_path / "m2")]) == 0
    bad = [r for r in read(tmp_path / "m2" / "rejects.jsonl") if r["stage"] == "mine-merge"]
    assert [(r["id"], r["reason"], r["line"]) for r in bad] == [(victim["id"], "id_mismatch", 1)]
    assert len(read(tmp_path / "m2" / "manifest.jsonl")) == 9

    # rerun: nothing mined again, same outputs; a changed source is mined again
    before = (tmp_path / "all" / "manifest.jsonl").read_bytes()
    capsys.readouterr()
    assert main(["mine", str(src), "--out", str(tmp_path / "all")]) == 0
    assert "0 mined now, 4 done earlier (reused)" in capsys.readouterr().out
    assert (tmp_path / "all" / "manifest.jsonl").read_bytes() == before
    paper(src / "p3-copy.pdf", seed=7)
    assert main(["mine", str(src), "--out", str(tmp_path / "all")]) == 0
    assert "1 mined now, 3 done earlier (reused)" in capsys.readouterr().out
    assert len(read(tmp_path / "all" / "manifest.jsonl")) == 20


def test_cli_summary_and_errors(tmp_path, capsys):
    paper(tmp_path / "crank.pdf")
    (tmp_path / "corrupt.pdf").write_bytes(b"not a pdf")
    out = tmp_path / "out"
    assert main(["mine", str(tmp_path / "crank.pdf"), str(tmp_path / "corrupt.pdf"), "--out", str(out)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "mine: 2 sources (0 JATS, 2 PDF, 2 PDF pages): 2 mined now, 0 done earlier (reused); 0 other files in the folders",
        "  sources  2 = 1 parsed + 1 rejected",
        "  figures  3 found = 2 passed + 1 rejected",
        "  images   5 cut from 2 figures = 5 kept + 0 rejected",
        "  kept 5 + rejected 2 = 7 candidates",
        "  rejects by reason: corrupt_pdf 1, no_caption 1",
        (f"wrote {out}/manifest.jsonl (5 records), {out}/images/ (5 PNG), {out}/rejects.jsonl (2), "
         f"{out}/evidence.jsonl (5), {out}/mine.json"),
    ]
    for argv, err in [
        (["--shard", "2/2"], "error: --shard 2/2: need 0 <= i < N (i counts from 0, as in --array=0-1)"),
        (["--shard", "one/2"], "error: --shard 'one/2': expected i/N with integers, e.g. 0/16"),
    ]:
        assert main(["mine", str(tmp_path / "crank.pdf"), "--out", str(out), *argv]) == 2
        assert capsys.readouterr().err.strip() == err
    assert main(["mine", str(tmp_path / "missing.pdf"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}/missing.pdf: no such file or folder"
    (tmp_path / "notes.docx").write_text("x")
    assert main(["mine", str(tmp_path / "notes.docx"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == \
        f"error: {tmp_path}/notes.docx: not a source (expected a folder, .nxml, .xml, .pdf or .tar.gz)"
    (tmp_path / "empty").mkdir()
    assert main(["mine", str(tmp_path / "empty"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.strip() == f"error: {tmp_path}/empty: no .nxml, .xml, .pdf or .tar.gz files found (0 other files)"
    assert main(["mine", "merge", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path}/nowhere: no manifest (expected a shard folder "
                                               "with manifest.jsonl, or a manifest file)")


def test_mine_then_build(tmp_path, capsys):
    """The mined manifest goes through `fracdata build` unchanged: every image kept."""
    from tests.support.jats_kit import write_article

    src = tmp_path / "src"
    src.mkdir()
    paper(src / "crank.pdf", seed=200)  # other textures than the article's (seeds 1, 2, 10-13)
    write_article(src / "PMC7654321")
    assert main(["mine", str(src), "--out", str(tmp_path / "mined")]) == 0
    recs = read(tmp_path / "mined" / "manifest.jsonl")
    assert len(recs) == 10
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"id": r["id"], "features": ["dimple_equiaxed"],
                                          "labeler": {"kind": "human"}}) + "\n" for r in recs))
    capsys.readouterr()
    rc = main(["build", "--manifest", str(tmp_path / "mined" / "manifest.jsonl"), "--labels", str(labels),
               "--out", str(tmp_path / "ds"), "--workers", "1", "--rotations", ""])
    printed = capsys.readouterr().out
    assert rc == 0, printed
    summary = json.loads((tmp_path / "ds" / "build.json").read_text())
    assert summary["streams"]["mined"] == {"read": 10, "kept": 10, "rejected": {}}, printed
    assert (tmp_path / "ds" / "rejects.jsonl").read_text() == ""
    ids = {r["id"] for r in recs}
    rows = [row for f in ("train_full.json", "val.json") for row in json.loads((tmp_path / "ds" / f).read_text())]
    assert sorted(row["id"] for row in rows) == sorted(ids)
    # the builder re-normalises every image and gets the miner's bytes back: same ids, same files
    assert {p.name for p in (tmp_path / "ds" / "images").iterdir()} == {f"{i}.png" for i in ids}
