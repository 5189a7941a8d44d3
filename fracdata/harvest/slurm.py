"""`fracdata harvest --slurm N`: an sbatch array script whose task i harvests shard i/N.

The rate limits are per process, and an archive sees the cluster's public address: the
script lets at most `concurrent` tasks run at once (`--array=0-(N-1)%K`) and gives each
1/K of the limits asked for, so the array together stays within them.
Template: fracdata/templates/harvest.sbatch.j2 (Jinja2; edit partition/account there).
"""

from __future__ import annotations

import shlex
import sys
from importlib import resources
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.harvest.services import EUROPEPMC_URL, PMC_URL

MAX_CONCURRENT = 4  # tasks at once; more only divides the same per-address limits further


def render_sbatch(args, query: str) -> str:
    import jinja2

    if args.slurm < 1:
        raise FracdataError(f"--slurm {args.slurm}: needs at least 1 array task")
    if args.shard:
        raise FracdataError("--slurm sets --shard itself ($SLURM_ARRAY_TASK_ID/N); leave --shard out")
    if not args.email:
        raise FracdataError("--slurm needs --email (or FRACDATA_EMAIL): every task must identify itself")
    k = min(args.slurm, MAX_CONCURRENT)
    passed = ["--query", query] if args.query else []
    for flag, value, default in (("--since", args.since, None), ("--limit", args.limit, None),
                                 ("--search-url", args.search_url, EUROPEPMC_URL),
                                 ("--archive-url", args.archive_url, PMC_URL), ("--page-size", args.page_size, 1000)):
        if value is not None and value != default:
            passed += [flag, str(value)]
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    env.filters["q"] = lambda s: shlex.quote(str(s))
    out = args.out.resolve()
    return env.from_string(resources.files("fracdata").joinpath("templates", "harvest.sbatch.j2").read_text()).render(
        sbatch_name=args.sbatch.name if args.sbatch else "harvest.sbatch",
        rendered_by=" ".join(["fracdata harvest", *map(shlex.quote, sys.argv[2:])]) if sys.argv[1:2] == ["harvest"]
        else f"fracdata harvest --slurm {args.slurm} --out {args.out}",
        tasks=args.slurm, concurrent=k, out=out, workdir=Path.cwd(), python=sys.executable, email=args.email,
        args=" ".join(shlex.quote(a) for a in passed),
        search_rate=round(args.search_rate / k, 3), archive_rate=round(args.archive_rate / k, 3),
        search_total=args.search_rate, archive_total=args.archive_rate)


def write_sbatch(args, query: str) -> int:
    text = render_sbatch(args, query)
    if args.sbatch:
        args.sbatch.parent.mkdir(parents=True, exist_ok=True)
        args.sbatch.write_text(text)
        print(f"wrote {args.sbatch} ({args.slurm} array tasks, at most {min(args.slurm, MAX_CONCURRENT)} at once); "
              f"submit with: sbatch {args.sbatch}")
    else:
        print(f"sbatch script for {args.slurm} array tasks follows on stdout", file=sys.stderr)
        sys.stdout.write(text)
    return 0
