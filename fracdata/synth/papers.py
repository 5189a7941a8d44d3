"""`fracdata synth --papers N`: synthetic papers that look like the literature, with their ground truth.

    fracdata synth --papers 60 --out data/papers [--seed 0]

Writes, under OUT:
  pdf/<name>.pdf                 PDF papers (paperpdf.py)
  jats/<name>/article.nxml       JATS articles with their figure files (paperjats.py)
  truth/<name>-f<k>[-<i>].png    each PDF figure's embedded image(s), for scoring panel boxes
  truth.jsonl                    per paper: the true DOI (or null) and where it is printed, the
                                 true licence and where it is stated, and per figure its label,
                                 caption, whether it is a fractograph and each panel's box
  papers.json                    config and counts per placement
Every placement the literature uses occurs, in turn: the article's own DOI in the header, the
footer, the document information dictionary (`/doi` or `/Subject`), XMP, a `https://doi.org/`
or Crossmark link, an IEEE placeholder, or nowhere, always beside a bibliography full of DOIs
(the placeholder `10.1109/access.2024.000000` among them); licences wherever PDFs and JATS put
them; figures as one fractograph, as sheets of 2x2, 2x3 and 2x4 panels with white or thin dark
gutters, panel titles, drawn letters and data bars (PNG or JPEG), as one image per panel under
titles or over sub-captions, and as plots the miner must refuse. Same seed -> same papers.
Score a `fracdata mine` run against truth.jsonl with benchmarks/perf/mine_accuracy.py.
"""

from __future__ import annotations

import json
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import replaced_folder
from fracdata.synth import paperfigs, papertext

VERSION = 1
FEATURES = ("dimple_equiaxed", "cleavage_facet", "ig_facet", "striation_ductile", "gas_pore", "secondary_crack")
PDF_DOI_AT = ("footer", "header", "metadata", "subject", "xmp", "link", "crossmark", "none", "placeholder")
JATS_DOI_AT = ("article_id", "article_id", "article_id", "none")
PDF_LICENCE_AT = ("footer", "abstract", "xmp", "closing", "nc", "none")
JATS_LICENCE_AT = ("license_href", "license_p", "ali", "copyright", "copyright_outside", "license_outside", "nc", "none")
GRIDS = ((2, 2), (2, 3), (2, 4))
IMAGE_GRIDS = ((2, 2), (2, 4), (4, 2), (1, 3))
MAX_SIDE = 1000  # px: under the miner's 1024, so mined panels are the embedded pixels, unscaled


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def figure(rng, number: int, fmt: str, style: dict, material: str, **fixed) -> dict:
    """One figure: its pixels, how it is laid out, its captions and its true panels. Every choice
    is drawn from `rng`; `fixed` overrides any of them (layout "single" | "grid" | "images" |
    "plot", grid (rows, cols), dark, titles, letters "none" | "drawn" | "subcaptions" | "text",
    bar "dark" | "light" | None, jpeg, marks: the caption marks the panels (a), (b), ...)."""
    def choose(key, drawn):  # always draw, so a fixed choice leaves the others as they were
        return fixed.get(key, drawn)

    layout = choose("layout", _pick(rng, ("single", "grid", "grid", "images", "plot") if fmt == "pdf"
                                     else ("single", "grid", "grid", "plot")))
    fig = {"layout": layout, "label": f"Fig. {number}", "rows": 1, "cols": 1, "titles": False, "letters": "none",
           "dark": False, "gutter": 0, "bar": None, "jpeg": choose("jpeg", bool(rng.random() < 0.4))}
    if layout == "plot":
        fig.update(pixels=[paperfigs.plot(rng)], fracture=False, panel_titles=[])
        fig["caption_text"] = papertext.plot_caption(rng, material)
        fig["truth_images"] = [[[0, 0, 400, 300]]]
    else:
        rows, cols = (1, 1) if layout == "single" else choose("grid", _pick(rng, GRIDS if layout == "grid" else IMAGE_GRIDS))
        n = rows * cols
        feats = [(_pick(rng, FEATURES),) for _ in range(n)]
        dark = choose("dark", bool(rng.random() < 0.5)) and layout == "grid" and n > 1
        gutter_w = 0 if n == 1 else int(rng.integers(2, 4)) if dark else int(rng.integers(3, 11))
        w = int(min(rng.integers(200, 290), (MAX_SIDE - (cols - 1) * 12) // cols)) if n > 1 else int(rng.integers(320, 520))
        h = int(w * rng.uniform(0.7, 0.8))
        bar = choose("bar", _pick(rng, ("dark", "dark", "dark", "light", None)))
        fig.update(rows=rows, cols=cols, bar=bar, gutter=gutter_w, dark=dark, fracture=True,
                   panel_titles=[_pick(rng, paperfigs.TITLES) for _ in range(n)])
        if n > 1:
            fig["titles"] = choose("titles", bool(rng.random() < 0.35))
            fig["letters"] = choose("letters", "none" if fig["titles"] and layout == "grid" else
                                    _pick(rng, ("drawn", "drawn", "none")) if layout == "grid" else
                                    _pick(rng, ("subcaptions", "text", "none")))
            if fig["letters"] == "subcaptions":
                fig["titles"] = False
        panels = [paperfigs.sem_panel(rng, f, h, w, style, bar) for f in feats]
        if fig["letters"] == "drawn":
            panels = [paperfigs.draw_letter(p, "abcdefgh"[i], rng) for i, p in enumerate(panels)]
        if layout == "grid":
            sheet, boxes = paperfigs.sheet(panels, cols, gutter_w, fig["dark"], fig["panel_titles"] if fig["titles"] else None,
                                           margin=int(rng.integers(0, 2)) * gutter_w)
            fig["pixels"], fig["truth_images"] = [sheet], [boxes]
        else:  # single, or one embedded image per panel
            fig["pixels"], fig["truth_images"] = panels, [[[0, 0, w, h]] for _ in panels]
        marks = choose("marks", fig["letters"] != "none" and rng.random() < 0.8)
        fig["caption_text"] = papertext.figure_caption(rng, material, feats, marks, fig["titles"])
    fig["caption"] = f"{fig['label']}. {fig['caption_text']}"
    fig["jats_caption"] = fig["caption_text"]
    return fig


def build_paper(rng, i: int, fmt: str, doi_at: str, licence_at: str, short: bool = False,
                figures: list[dict] | None = None) -> dict:
    """Everything one paper says, and where (see the module doc); no file is written.
    `figures`: one dict of fixed choices per figure (see `figure`), else 2-4 drawn ones (1 when short)."""
    style = {"contrast": rng.uniform(0.7, 1.3), "brightness": rng.uniform(-0.08, 0.08),
             "blur": rng.uniform(0.0, 1.0), "noise": rng.uniform(0.01, 0.05)}
    paper = papertext.front_matter(rng, i, fmt, doi_at, licence_at)
    n_figs = 1 if short else int(rng.integers(2, 5))
    fixed = figures if figures is not None else [{}] * n_figs
    paper["figures"] = [figure(rng, k + 1, fmt, style, paper["material"], **f) for k, f in enumerate(fixed)]
    if fmt == "jats" and licence_at in ("license_p", "copyright", "copyright_outside", "none"):
        paper["figures"][0]["reproduced"] = True  # figure-level NC permissions: not the article's licence
    paper["paragraphs"] = papertext.paragraphs(rng, paper["figures"], fmt, short)
    paper["reference_records"] = papertext.references(rng, 6 if short else int(rng.integers(10, 26)),
                                                      trap=fmt == "pdf" and licence_at in ("abstract", "closing", "none"))
    paper["references"] = [papertext.reference_text(r) for r in paper["reference_records"]]
    paper["placeholder_ref"] = any(r["doi"] == papertext.PLACEHOLDER_REF for r in paper["reference_records"])
    paper["short"] = short
    return paper


def _truth(paper: dict, file: str, written: dict, fig_files: list[list[str]]) -> dict:
    figs = []
    for fig, files in zip(paper["figures"], fig_files):
        letters = fig["letters"] != "none"
        images = []
        for k, (boxes, f) in enumerate(zip(fig["truth_images"], files)):
            first = k * len(boxes)
            images.append({"file": f, "panels": [
                {"box": b, "letter": "abcdefgh"[first + j] if letters else None,
                 "title": fig["panel_titles"][first + j] if fig["titles"] or fig["letters"] == "subcaptions" else None}
                for j, b in enumerate(boxes)]})
        figs.append({"label": fig["label"], "caption": fig["caption"] if paper["format"] == "pdf" else fig["jats_caption"],
                     "fracture": fig["fracture"], "layout": fig["layout"], "rows": fig["rows"], "cols": fig["cols"],
                     "gutter": ("dark" if fig["dark"] else "white") if fig["rows"] * fig["cols"] > 1 and fig["layout"] == "grid"
                     else None, "gutter_px": fig["gutter"], "titles": fig["titles"], "letters": fig["letters"],
                     "data_bar": fig["bar"], "jpeg": fig["jpeg"], "images": images})
    return {"paper": paper["name"], "format": paper["format"], "file": file, "doi": paper["true_doi"],
            "doi_at": paper["doi_at"], "licence": paper["licence"], "licence_at": paper["licence_at"],
            "references": len(paper["references"]), "placeholder_reference": paper["placeholder_ref"],
            **({"references_page": written["references_page"], "pages": written["pages"]} if "pages" in written else {}),
            "figures": figs}


def _writers():
    try:
        from fracdata.synth.paperjats import write_jats
        from fracdata.synth.paperpdf import write_pdf
    except ImportError as e:  # reportlab is not core: it lays out the PDFs
        raise FracdataError(f"synth --papers needs reportlab ({e}); install it with pip install 'fracdata[papers]'") from None
    return write_pdf, write_jats


def write_paper(root: Path, paper: dict) -> dict:
    """Write one paper under root (pdf/<name>.pdf and truth/, or jats/<name>/); return its truth."""
    from PIL import Image

    write_pdf, write_jats = _writers()
    name = paper["name"]
    if paper["format"] == "jats":
        written = write_jats(root / "jats" / name, paper)
        return _truth(paper, f"jats/{name}/article.nxml", written, [[f"jats/{name}/{p.name}"] for p in written["graphics"]])
    written = write_pdf(_mkdir(root / "pdf") / f"{name}.pdf", paper)
    files = []
    for f, fig in enumerate(paper["figures"], 1):  # the embedded pixels, to score panel boxes against
        names = [f"truth/{name}-f{f}{'' if len(fig['pixels']) == 1 else f'-{j + 1}'}.png" for j in range(len(fig["pixels"]))]
        for file, px in zip(names, fig["pixels"]):
            Image.fromarray(px).save(_mkdir(root / "truth") / Path(file).name)
        files.append(names)
    return _truth(paper, f"pdf/{name}.pdf", written, files)


def generate_papers(out, n: int, seed: int = 0) -> dict:
    """Write n papers under `out` (see the module doc); returns the summary written to papers.json."""
    import numpy as np

    _writers()
    if n < 1 or seed < 0:
        raise FracdataError(f"synth: --papers must be >= 1 and --seed >= 0, got {n} and {seed}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise FracdataError(f"{out}: exists and is not a folder; --out names the papers folder")
    if out.exists() and any(out.iterdir()) and not (out / "papers.json").is_file():
        raise FracdataError(f"{out}: exists, is not empty and holds no papers.json; refusing to replace it")
    with replaced_folder(out) as tmp:  # atomic: built aside, then renamed into place
        truths, done = [], {"pdf": 0, "jats": 0}
        for i in range(n):
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(7, i)))
            fmt = "jats" if i % 3 == 2 else "pdf"  # placements cycle per format: every one occurs
            k = done[fmt]
            if fmt == "pdf":
                paper = build_paper(rng, i, fmt, PDF_DOI_AT[k % len(PDF_DOI_AT)], PDF_LICENCE_AT[k % len(PDF_LICENCE_AT)],
                                    short=k % 7 == 3)  # one PDF in 7 is a letter: its references on page 1
            else:
                paper = build_paper(rng, i, fmt, JATS_DOI_AT[k % len(JATS_DOI_AT)], JATS_LICENCE_AT[k % len(JATS_LICENCE_AT)])
            truths.append(write_paper(tmp, paper))
            done[fmt] += 1
        (tmp / "truth.jsonl").write_text("".join(json.dumps(t, sort_keys=True) + "\n" for t in truths))
        summary = _summary(truths, n, seed)
        (tmp / "papers.json").write_text(json.dumps(summary, indent=1, sort_keys=True) + "\n")
    return {**summary, "out": str(out)}


def _mkdir(p: Path) -> Path:
    p.mkdir(parents=True, exist_ok=True)
    return p


def _summary(truths: list[dict], n: int, seed: int) -> dict:
    from collections import Counter

    figs = [f for t in truths for f in t["figures"]]
    return {"generator": "fracdata-synth-papers", "version": VERSION, "config": {"papers": n, "seed": seed},
            "counts": {"papers": n, "pdf": sum(t["format"] == "pdf" for t in truths),
                       "jats": sum(t["format"] == "jats" for t in truths), "figures": len(figs),
                       "fractograph_figures": sum(f["fracture"] for f in figs),
                       "panels": sum(len(im["panels"]) for f in figs for im in f["images"]),
                       "doi_at": dict(Counter(t["doi_at"] for t in truths)),
                       "licence_at": dict(Counter(t["licence_at"] for t in truths)),
                       "layouts": dict(Counter(f["layout"] for f in figs))}}


def run_papers(args) -> int:
    corpus = [f"--{d.replace('_', '-')}" for d, default in getattr(args, "corpus_defaults", {}).items()
              if getattr(args, d) != default]
    if corpus:
        raise FracdataError(f"synth --papers: {', '.join(corpus)} {'is' if len(corpus) == 1 else 'are'} for the image "
                            "corpus; --papers takes --out and --seed")
    s = generate_papers(args.out, args.papers, seed=args.seed)
    c, out = s["counts"], s["out"]
    print(f"synth: wrote {c['papers']} papers ({c['pdf']} PDF in {out}/pdf/, {c['jats']} JATS in {out}/jats/) with "
          f"{c['figures']} figures ({c['fractograph_figures']} fractographs, {c['panels']} panels)")
    print(f"  own DOI at: {', '.join(f'{k} {v}' for k, v in sorted(c['doi_at'].items()))}")
    print(f"  licence at: {', '.join(f'{k} {v}' for k, v in sorted(c['licence_at'].items()))}")
    print(f"  figures:    {', '.join(f'{k} {v}' for k, v in sorted(c['layouts'].items()))}")
    print(f"wrote {out}/truth.jsonl ({c['papers']} papers: true DOI, licence, panel boxes), {out}/truth/ "
          f"(the PDFs' figure images), {out}/papers.json")
    print(f"next: fracdata mine {out}/pdf {out}/jats --out MINED; "
          f"benchmarks/perf/mine_accuracy.py scores it against the truth")
    return 0
