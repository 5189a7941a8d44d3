"""`fracbench` command line: infer, score, report, run (one module per command, as in fracdata).

Heavy libraries (torch, transformers, openai, matplotlib) load inside the commands only.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from fracbench import __version__
from fracdata.errors import FracdataError

COMMANDS: dict[str, tuple[str, str]] = {
    "infer": ("fracbench.infer", "predict the gold images with local checkpoints or API models (cached)"),
    "score": ("fracbench.score", "score predictions: P/R/F1 with bootstrap CIs, paired tests, kappa -> metrics.json"),
    "report": ("fracbench.report", "render metrics.json as Markdown, CSV and PNG plots with provenance"),
    "run": ("fracbench.run", "infer + score + report for a list of models (what `make bench` runs)"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = argparse.ArgumentParser(prog="fracbench", description="fracbench: score fractography VLMs on a hand-annotated benchmark.")
    parser.add_argument("--version", action="version", version=f"fracbench {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == command:
            importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    try:
        return int(importlib.import_module(COMMANDS[args.command][0]).run(args) or 0)
    except FracdataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
