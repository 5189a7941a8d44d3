"""The `fracdata harvest` command line: arguments and their checks, then harvest (pipeline.py), merge
(merge.py) or an sbatch array (slurm.py), and what was written."""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from collections import Counter
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.harvest.services import EUROPEPMC_RATE, EUROPEPMC_URL, PMC_RATE, PMC_URL
from fracdata.records import dump_jsonl


# Fracture-surface fractography of metals, ceramics, polymers and composites: a fractography
# term AND an SEM term AND a material class. Europe PMC matches title, abstract and full text.
DEFAULT_QUERY = ('("fracture surface" OR "fracture surfaces" OR fractography OR fractographic OR fractograph '
                 'OR fractographs) AND ("scanning electron" OR SEM) AND (metal OR metallic OR alloy OR steel OR '
                 'titanium OR aluminium OR aluminum OR ceramic OR ceramics OR polymer OR polymers OR composite OR '
                 'composites)')
EMAIL_RE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.formatter_class = argparse.RawDescriptionHelpFormatter
    p.epilog = ("examples:\n"
                "  fracdata harvest --out data/harvested --email you@example.org --limit 100\n"
                "  fracdata harvest --out data/h/shard-$SLURM_ARRAY_TASK_ID --shard $SLURM_ARRAY_TASK_ID/16\n"
                "  fracdata harvest merge data/h/shard-* --out data/harvested\n"
                "  fracdata mine data/harvested --out data/mined\n"
                f"default query:\n  {DEFAULT_QUERY}\n"
                "outputs: PMC<id>.<version>/ per article, harvest.jsonl, rejects.jsonl, harvest.json (docs/harvest.md)")
    p.add_argument("merge", nargs="*", metavar="merge SHARD_DIR",
                   help="`merge SHARD_DIR...` merges shard outputs into --out instead of harvesting")
    p.add_argument("--out", required=True, type=Path, help="output folder (one per shard); reruns resume in it")
    p.add_argument("--query", help="Europe PMC query (default: the fractography query below); "
                                   "harvest adds OPEN_ACCESS:y AND IN_PMC:y")
    p.add_argument("--since", type=int, metavar="YEAR", help="only articles published in YEAR or later")
    p.add_argument("--limit", type=int, metavar="N", help="stop once N articles are kept (in this shard)")
    p.add_argument("--email", default=os.environ.get("FRACDATA_EMAIL"),
                   help="your contact e-mail, sent to the services as they ask of automated clients "
                        "(default: $FRACDATA_EMAIL; required)")
    p.add_argument("--shard", metavar="i/N", help="harvest only the articles with sha256(PMCID) mod N == i")
    p.add_argument("--search-url", default=os.environ.get("FRACDATA_EUROPEPMC_URL", EUROPEPMC_URL),
                   help="Europe PMC REST base URL (default: $FRACDATA_EUROPEPMC_URL or %(default)s)")
    p.add_argument("--archive-url", default=os.environ.get("FRACDATA_PMC_URL", PMC_URL),
                   help="PMC Cloud Service base URL (default: $FRACDATA_PMC_URL or %(default)s)")
    p.add_argument("--search-rate", type=float, default=EUROPEPMC_RATE, help="Europe PMC requests/s (default %(default)s)")
    p.add_argument("--archive-rate", type=float, default=PMC_RATE, help="PMC Cloud requests/s (default %(default)s)")
    p.add_argument("--page-size", type=int, default=1000, help="search hits per page, 1-1000 (default %(default)s)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds for a whole request (default %(default)s)")
    p.add_argument("--retries", type=int, default=5, help="retries on 429, 5xx and network errors (default %(default)s)")
    p.add_argument("--max-wait", type=float, default=600.0,
                   help="longest Retry-After to wait out, in s; longer is an error (default %(default)s)")
    p.add_argument("--refresh", action="store_true", help="search again although DIR holds a complete search "
                                                          "(articles already fetched are kept)")
    p.add_argument("--slurm", type=int, metavar="N", help="print an sbatch script for an N-task array of this "
                                                          "harvest (one shard per task) instead of harvesting")
    p.add_argument("--sbatch", type=Path, metavar="FILE", help="with --slurm: write the script to FILE")
    p.add_argument("--overwrite", action="store_true", help="harvest into an --out that harvest did not write "
                                                            "(its PMC<id>.* folders may be replaced)")


def _fmt(counter) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))) or "none"


def _check(args) -> None:
    if not args.email or not EMAIL_RE.match(args.email):
        got = f" ({args.email!r} is not an address)" if args.email else ""
        raise FracdataError(f"harvest needs a contact e-mail{got}: --email you@example.org or FRACDATA_EMAIL=... "
                            "(Europe PMC and PMC ask automated clients to identify themselves)")
    for name in ("search_rate", "archive_rate", "timeout"):
        if not getattr(args, name) > 0:
            raise FracdataError(f"--{name.replace('_', '-')} {getattr(args, name)}: must be > 0")
    if not 1 <= args.page_size <= 1000:
        raise FracdataError(f"--page-size {args.page_size}: Europe PMC serves 1 to 1000 hits per page")
    if args.limit is not None and args.limit < 1:
        raise FracdataError(f"--limit {args.limit}: must be >= 1")
    if args.retries < 0:
        raise FracdataError(f"--retries {args.retries}: must be >= 0")
    for url in (args.search_url, args.archive_url):
        if not re.match(r"^https?://[^/\s]+", url):
            raise FracdataError(f"{url}: not an http(s) base URL")


def run(args) -> int:
    from fracdata.files import Output, check_outputs, folder_with
    from fracdata import __version__
    from fracdata.harvest.http import Client, Service
    from fracdata.harvest.pipeline import Settings, harvest, reject_record
    from fracdata.cli import parse_shard

    if args.merge:
        return _run_merge(args)
    query = args.query or DEFAULT_QUERY
    shard = parse_shard(args.shard)
    if args.slurm is not None:
        from fracdata.harvest.slurm import write_sbatch

        return write_sbatch(args, query)
    _check(args)
    settings = Settings(query=query, since=args.since, limit=args.limit, shard=shard, page_size=args.page_size,
                        refresh=args.refresh)
    client = Client(args.email, [Service("europepmc", args.search_url.rstrip("/"), args.search_rate),
                                 Service("pmc", args.archive_url.rstrip("/"), args.archive_rate)],
                    timeout=args.timeout, retries=args.retries, max_wait=args.max_wait)
    check_outputs([Output(args.out, "harvest folder", folder_with(".harvest"))], [], overwrite=args.overwrite)
    print(f"harvest: query{'' if args.query else ' (default)'}: {query}")
    print(f"  sent to Europe PMC as: {settings.full_query()}")
    t0 = time.monotonic()

    def on_page(n, total):
        print(f"  ... search: {n} of {total} hits", file=sys.stderr)

    try:
        args.out.mkdir(parents=True, exist_ok=True)
        r = harvest(client, settings, args.out, on_page)
    except OSError as e:  # a full disk, a read-only --out: one line, the staged files stay for a rerun
        raise FracdataError(f"{e.filename or args.out}: cannot write ({e.strerror or e})") from None
    wall = time.monotonic() - t0
    entries = r.entries
    kept = [e for e in entries if e["status"] == "kept"]
    rejects = [reject_record(e) for e in entries if e["status"] != "kept"]
    reasons = Counter(e["reason"] for e in entries if e["status"] != "kept")
    in_shard = f"; {len(r.in_shard)} in shard {shard[0]}/{shard[1]}" if shard[1] > 1 else ""
    svc = client.services
    retries = Counter({k[6:]: v for s in svc.values() for k, v in s.stats.items() if k.startswith("retry:")})
    print(f"  search: {r.hits} hits ({r.pages} pages requested now){in_shard}")
    print(f"  articles {len(entries)} = {len(kept)} kept + {len(rejects)} rejected"
          f"{f'; stopped at --limit {args.limit}, {r.unprocessed} hits not processed' if r.unprocessed else ''}")
    print(f"  {r.now} finished now, {r.reused} done earlier (reused)")
    print(f"  rejects by reason: {_fmt(reasons)}")
    print(f"  files: {r.files['fetched']} fetched ({r.files['bytes'] / 1e6:.1f} MB), {r.files['reused']} reused "
          f"from staging; requests: Europe PMC {svc['europepmc'].stats['requests']}, PMC {svc['pmc'].stats['requests']}"
          f" (retries: {_fmt(retries)}); {wall:.1f} s")
    info = {"fracdata_version": __version__, "query": query, "full_query": settings.full_query(),
            "since": args.since, "limit": args.limit, "shard": f"{shard[0]}/{shard[1]}",
            "services": {s.name: {"base": s.base, "rate": s.rate, "requests": s.stats["requests"],
                                  "bytes": s.stats["bytes"], "waited_s": round(s.stats["waited_s"], 3)} for s in svc.values()},
            "counts": {"hits": r.hits, "in_shard": len(r.in_shard), "articles": len(entries), "kept": len(kept),
                       "rejected": len(rejects), "unprocessed": r.unprocessed, "now": r.now, "reused": r.reused,
                       "files_fetched": r.files["fetched"], "bytes_fetched": r.files["bytes"]},
            "rejects_by_reason": dict(reasons), "wall_s": round(wall, 3)}
    n_ledger = dump_jsonl(entries, args.out / "harvest.jsonl")
    n_rejects = dump_jsonl(rejects, args.out / "rejects.jsonl")
    from fracdata.files import atomic_write_bytes

    atomic_write_bytes(args.out / "harvest.json", (json.dumps(info, indent=1, sort_keys=True) + "\n").encode())
    print(f"wrote {args.out}/harvest.jsonl ({n_ledger} lines), {args.out}/rejects.jsonl ({n_rejects}), "
          f"{args.out}/harvest.json, {args.out}/PMC*/ ({len(kept)} article folders)")
    print(f"next: fracdata mine {args.out} --out <mined>")
    return 0


def _run_merge(args) -> int:
    from fracdata.harvest.merge import merge

    if args.merge[0] != "merge":
        raise FracdataError(f"harvest: unexpected argument {args.merge[0]!r} (did you mean `fracdata harvest merge "
                            "SHARD_DIR... --out DIR`?)")
    if len(args.merge) < 2:
        raise FracdataError("harvest merge: name the shard folders, e.g. fracdata harvest merge out/shard-* --out out/all")
    r = merge(args.merge[1:], args.out)
    print(f"harvest merge: {len(r['inputs'])} ledgers, {r['read']} lines read = {r['kept']} kept + "
          f"{r['rejected']} rejected + {r['duplicates']} duplicates")
    print(f"  rejects by reason: {_fmt(r['reasons'])}")
    print(f"wrote {args.out}/harvest.jsonl ({r['lines']} lines), {args.out}/rejects.jsonl ({r['rejects']}), "
          f"{args.out}/harvest.json, {args.out}/PMC*/ ({r['kept']} article folders, {r['files']} files linked)")
    return 0
