"""`fracbench` command line: infer, score, report, run, models (one module per command, as in fracdata).

Heavy libraries (torch, transformers, openai, matplotlib) load inside the commands only.
"""

from __future__ import annotations

from fracbench import __version__
from fracdata.cli import dispatch

COMMANDS: dict[str, tuple[str, str]] = {
    "infer": ("fracbench.infer", "predict the gold images with local checkpoints or API models (cached)"),
    "score": ("fracbench.score", "score predictions: P/R/F1 with bootstrap CIs, paired tests, kappa -> metrics.json"),
    "report": ("fracbench.report", "render metrics.json as Markdown, CSV and PNG plots with provenance"),
    "run": ("fracbench.run", "infer + score + report for a list of models (what `make bench` runs)"),
    "export": ("fracbench.export", "export the gold set and task for other harnesses: an lmms-eval task or a VLMEvalKit TSV"),
    "models": ("fracbench.listing", "list the model entries that --model/--models accept by name, and the shipped tasks"),
}


def main(argv: list[str] | None = None) -> int:
    return dispatch("fracbench", "fracbench: score fractography VLMs on a hand-annotated benchmark.",
                    __version__, COMMANDS, argv)


if __name__ == "__main__":
    raise SystemExit(main())
