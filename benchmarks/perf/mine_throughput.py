"""Throughput of `fracdata mine` on a generated PDF corpus: prints pages/s and figures/s.

    .venv/bin/python benchmarks/perf/mine_throughput.py [--papers 50] [--keep DIR]

Each generated paper has 4 pages: a single-image figure (800x600 px) on pages 1 and 4, a 2x2
panel figure (4 x 400x300 px + 12 px gutters) on page 2, text only on page 3, and citing
paragraphs throughout. 50 papers = 200 pages, 150 figures, 300 panel images. The miner runs
in one process (scale out with --shard); a second run measures the rerun path (all reused).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the generated papers come from the tests' fixture code

from fracdata.mine.pipeline import Settings, mine  # noqa: E402
from tests.support.pdfs import grid, texture, write_pdf  # noqa: E402

LICENCE = "Open access under the CC BY license (https://creativecommons.org/licenses/by/4.0/). doi:10.5555/bench.{i}"
TEXT = ("The fracture surface was examined by SEM after the test. " * 6).strip()


def make_corpus(folder: Path, papers: int) -> None:
    for i in range(papers):
        s = 1000 * i
        write_pdf(folder / f"paper{i:03d}.pdf", [
            [("p", LICENCE.format(i=i)), ("p", f"{TEXT} Fig. 1 shows striations."),
             ("fig", texture(s, (800, 600)), "Fig. 1. SEM fractograph of the fatigue fracture surface.")],
            [("fig", grid([texture(s + k, (400, 300)) for k in range(1, 5)]),
              "Fig. 2. Overload: (a) dimples; (b) shear lip; (c) cleavage; (d) tearing."), ("p", f"{TEXT} See Fig. 2.")],
            [("p", f"{TEXT} Figs. 1 and 2 agree.")] * 8,
            [("fig", texture(s + 9, (800, 600)), "Fig. 3. Fracture surface of the second specimen, showing dimples."),
             ("p", f"{TEXT} Fig. 3 shows the overload zone.")],
        ], title=f"Bench paper {i}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--papers", type=int, default=50)
    ap.add_argument("--keep", type=Path, help="write the corpus and output here instead of a temp folder")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep or Path(tmp)
        src, out = root / "corpus", root / "mined"
        src.mkdir(parents=True, exist_ok=True)
        t0 = time.perf_counter()
        make_corpus(src, args.papers)
        t_gen = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in src.glob("*.pdf")) / 1e6
        print(f"corpus: {args.papers} PDFs, {size:.1f} MB, generated in {t_gen:.1f} s")
        t0 = time.perf_counter()
        res = mine([str(src)], out, Settings(), force=True)
        dt = time.perf_counter() - t0
        c = res.counts
        print(f"mine:   {c['pages']} pages, {c['figures']} figures, {c['images']} images -> {c['kept']} kept "
              f"({dict(res.reasons) or 'no rejects'}) in {dt:.2f} s")
        print(f"        {c['pages'] / dt:.1f} pages/s, {c['figures'] / dt:.1f} figures/s, {c['images'] / dt:.1f} images/s, "
              f"{dt / args.papers * 1000:.0f} ms/paper")
        t0 = time.perf_counter()
        res = mine([str(src)], out, Settings())
        dt2 = time.perf_counter() - t0
        print(f"rerun:  {res.reused} of {len(res.sources)} sources reused in {dt2:.2f} s "
              f"({len(res.sources) / dt2:.0f} sources/s: sha256 of each file + state check)")


if __name__ == "__main__":
    main()
