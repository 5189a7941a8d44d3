"""Throughput of `fracdata harvest` against the local archive stub: prints articles/s.

    .venv/bin/python benchmarks/perf/harvest_throughput.py [--copies 8] [--keep DIR]

The corpus is the five real PLOS/eLife articles of tests/fixtures/jats (7 figures; PMC style,
see tests/support/harvest_kit.py) repeated under `--copies` sets of PMCIDs: 8 copies = 40
articles, 56 figure files. Each article costs 3 + (its figures) requests to PMC: the version
listing, the record, the XML and one per figure, so 40 articles are 40 x 3 + 56 = 176 requests.

Three runs, each into a fresh folder: at the default rate limits (PMC 3 requests/s, Europe PMC
8/s), so the figure is what a real harvest gets when the archive answers at once; with the
limits out of the way (1,000/s), the client's own cost; and a rerun of the first (all reused).
The expected rate-limited time is requests / rate: 176 / 3 = 58.7 s, 0.68 articles/s.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # the stub and the corpus come from the tests' support code

from fracdata.harvest.services import EUROPEPMC_RATE, PMC_RATE  # noqa: E402
from fracdata.harvest.http import Client, Service  # noqa: E402
from fracdata.harvest.pipeline import Settings, harvest  # noqa: E402
from tests.support.archive_server import ArchiveStub  # noqa: E402
from tests.support.harvest_kit import real_corpus  # noqa: E402


def run(stub: ArchiveStub, out: Path, search_rate: float, archive_rate: float) -> tuple[float, object, Client]:
    client = Client("bench@example.org", [Service("europepmc", stub.search_url, search_rate),
                                          Service("pmc", stub.archive_url, archive_rate)])
    t0 = time.perf_counter()
    res = harvest(client, Settings(query="fractography"), out)
    return time.perf_counter() - t0, res, client


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--copies", type=int, default=8)
    ap.add_argument("--keep", type=Path, help="write the output here instead of a temp folder")
    args = ap.parse_args()
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with tempfile.TemporaryDirectory() as tmp, ArchiveStub() as stub:
        root = args.keep or Path(tmp)
        stub.add(*real_corpus(args.copies))
        n = len(stub.articles)
        figures = sum(len(a.media) - 2 for a in stub.articles.values())
        expected = 3 * n + figures
        print(f"corpus: {n} real articles ({args.copies} copies of 5), {figures} figure files; "
              f"{expected} PMC requests expected")
        for label, out, srate, arate in (("default limits", root / "limited", EUROPEPMC_RATE, PMC_RATE),
                                         ("no limit (1000/s)", root / "unlimited", 1000.0, 1000.0),
                                         ("rerun, all done", root / "limited", EUROPEPMC_RATE, PMC_RATE)):
            dt, res, client = run(stub, out, srate, arate)
            pmc = client.services["pmc"].stats
            kept = sum(e["status"] == "kept" for e in res.entries)
            print(f"{label:18s} {dt:7.2f} s  {kept} kept ({res.now} now, {res.reused} reused)  "
                  f"{kept / dt:7.2f} articles/s  {pmc['requests']} PMC requests ({pmc['requests'] / dt:.2f}/s), "
                  f"{res.files['bytes'] / 1e6:.1f} MB")
        print(f"at {PMC_RATE:g} PMC requests/s the floor is {expected / PMC_RATE:.1f} s "
              f"= {n / (expected / PMC_RATE):.2f} articles/s")
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
