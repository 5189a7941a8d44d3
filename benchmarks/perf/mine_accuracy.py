"""Mining recall and precision per figure and per panel, and the papers' DOI and licence:
on synthetic papers (`fracdata synth --papers`) and on the real JATS fixtures (tests/fixtures/jats).

    .venv/bin/python benchmarks/perf/mine_accuracy.py [--papers 60] [--seed 0] [--keep DIR]

Synthetic papers: every DOI and licence placement in turn, 2-4 figures each (fractographs as
one image, sheets of 2x2-2x4 panels with white or dark gutters, titles, letters and data bars,
one image per panel, and plots to refuse); truth.jsonl holds the true DOI, licence and panel
boxes, and fracdata/mine/accuracy.py scores the mine output against it. Real fixtures: the five
PLOS and eLife articles, their figure files generated as PMC serves them (tests/support/harvest_kit.py),
mined with the filter off (they are not fractography) against their DOI, licence and <fig>
count as tests/fixtures/README.md and the XML state them.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the real fixtures' figure files come from the tests' kit

from fracdata.mine.accuracy import score  # noqa: E402
from fracdata.mine.jats import parse_jats  # noqa: E402
from fracdata.mine.pdf import parse_pdf  # noqa: E402
from fracdata.mine.pipeline import Settings, mine  # noqa: E402
from fracdata.synth.papers import generate_papers  # noqa: E402
from tests.support.harvest_kit import graphics, jpeg, pmc_xml  # noqa: E402

# tests/fixtures/README.md: the DOI and licence of each real article; figures = its <fig> elements
REAL = {"elife00240.xml": ("10.7554/elife.00240", "CC BY 3.0", 1), "elife09853.xml": ("10.7554/elife.09853", "CC BY 4.0", 1),
        "journal.pbio.1001044.xml": ("10.1371/journal.pbio.1001044", "CC BY", 1),
        "journal.pbio.2001413.xml": ("10.1371/journal.pbio.2001413", "CC BY 4.0", 3),
        "journal.pmed.0020402.xml": ("10.1371/journal.pmed.0020402", "PDM", 1)}


def pct(x) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def synthetic(root: Path, n: int, seed: int) -> None:
    t0 = time.perf_counter()
    s = generate_papers(root / "papers", n, seed)
    print(f"generated {n} papers ({s['counts']['pdf']} PDF, {s['counts']['jats']} JATS), {s['counts']['figures']} figures, "
          f"{s['counts']['panels']} panels in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    res = mine([str(root / "papers" / "pdf"), str(root / "papers" / "jats")], root / "mined", Settings(), force=True)
    print(f"mined in {time.perf_counter() - t0:.1f} s: {res.counts['kept']} kept, rejects {dict(res.reasons)}")
    articles = {}
    for f in sorted((root / "papers" / "pdf").glob("*.pdf")):
        a = parse_pdf(f)
        articles[f"pdf/{f.name}"] = (a.doi, a.licence)
    for f in sorted((root / "papers" / "jats").glob("*/article.nxml")):
        a = parse_jats(f)
        articles[f"jats/{f.parent.name}/article.nxml"] = (a.doi, a.licence)
    r = score(root / "papers" / "truth.jsonl", root / "mined", articles)
    f, p, d, q = r["figure"], r["panel"], r["doi"], r["rates"]
    print(f"\nsynthetic papers: {r['papers']}, fractograph figures under an allowed licence: {f['expected']}, "
          f"their panels: {p['expected']}")
    print("| measure | recall | precision | counts |\n|---|---|---|---|")
    print(f"| figures | {pct(q['figure_recall'])} | {pct(q['figure_precision'])} | {f['right']} of {f['expected']} "
          f"expected found; {f['mined']} mined; {f['complete']} with every panel and nothing else |")
    print(f"| panels | {pct(q['panel_recall'])} | {pct(q['panel_precision'])} | {p['right']} of {p['expected']} found; "
          f"{p['mined']} images mined |")
    print(f"| own DOI | {pct(q['doi_recall'])} | {pct(q['doi_precision'])} | {d['right']} of {r['papers']} papers right "
          f"({d['stated']} state one); {d['wrong']} wrong; {d['placeholder_taken']} placeholders taken |")
    print(f"| licence | {pct(q['licence_right'])} right | | {r['licence']['right']} of {r['papers']} |")
    print(f"\ncaption: the figure's lead kept on {pct(q['caption_kept'])} of found panels, exactly the figure's (or the "
          f"panel's part of it, with its title or sub-caption) on {pct(q['caption_exact'])}; "
          f"printed letter right on {pct(q['letter_right'])} "
          f"({r['letter']['right']} of {r['letter']['right'] + r['letter']['wrong']})")
    print("| layout | figures | panels | panels found | figures complete |\n|---|---|---|---|---|")
    for name, c in sorted(r["by_layout"].items()):
        if c["figures"]:
            print(f"| {name} | {c['figures']} | {c['panels']} | {c['panels_right']} | {c['figures_complete']} |")


def real(root: Path) -> None:
    import json

    for k, name in enumerate(REAL):
        folder = root / "real" / f"PMC{100 + k}"
        folder.mkdir(parents=True)
        xml = pmc_xml(name, f"PMC{100 + k}")
        (folder / "article.nxml").write_bytes(xml)
        for i, href in enumerate(graphics(xml)):
            (folder / f"{href}.jpg").write_bytes(jpeg(10 * k + i))
    mine([str(root / "real")], root / "real-mined", Settings(min_score=-1e9), force=True)
    recs = [json.loads(line) for line in (root / "real-mined" / "manifest.jsonl").read_text().splitlines()]
    figs = {(r["source"]["file"], r["source"].get("figure") or r["caption"]) for r in recs}
    want = sum(n for _, _, n in REAL.values())
    right_doi = right_lic = 0
    for k, (name, (doi, lic, _)) in enumerate(REAL.items()):
        a = parse_jats(root / "real" / f"PMC{100 + k}" / "article.nxml")
        right_doi += a.doi == doi
        right_lic += a.licence == lic
    print(f"\nreal JATS fixtures: {len(REAL)} articles, {want} figures: {len(figs)} figures mined "
          f"(recall {pct(min(len(figs), want) / want)}, precision {pct(min(len(figs), want) / max(len(figs), 1))}), "
          f"DOI right {right_doi}/{len(REAL)}, licence right {right_lic}/{len(REAL)}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", type=Path, help="write the papers and outputs here instead of a temp folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        synthetic(root, args.papers, args.seed)
        real(root)


if __name__ == "__main__":
    main()
