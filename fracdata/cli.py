"""`fracdata` command line: a thin dispatcher over one module per stage.

Each stage module exposes `add_arguments(parser)` and `run(args) -> int`, and imports heavy
libraries (torch, transformers, llamafactory) inside functions only, so `fracdata --help`
and `import fracdata` stay fast. Only the chosen command's module is imported.

stdout carries only artifacts. A module may define `artifact(args) -> bool`: True when this run's
stdout is a file for a program (`recipes render`, `train --slurm` without `--out`, `--plan
--json`, `taxonomy`). While such a command runs, file descriptor 1 points at stderr, so whatever
the command, LlamaFactory, transformers or a subprocess prints lands there, and the command
writes its artifact to `artifact_stream(args)`, the real stdout.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import io
import os
import sys

from fracdata import __version__
from fracdata.errors import FracdataError
from fracdata.untrusted import escape

# command -> (module, one-line help). Order = pipeline order, as in README and `make help`.
COMMANDS: dict[str, tuple[str, str]] = {
    "harvest": ("fracdata.harvest", "find and download open-access fractography articles (JATS + figures) by query"),
    "mine": ("fracdata.mine", "extract figures, captions and citing excerpts from JATS/PDF papers into a manifest"),
    "label": ("fracdata.label", "label manifest images with GPT-5.2 (or any OpenAI-compatible model) into a labels file"),
    "labels": ("fracdata.label.aggregate", "combine several labellers' files per feature (Dawid-Skene; majority vote baseline)"),
    "audit": ("fracdata.label.audit", "sample labels for human review and score agreement (Cohen's kappa)"),
    "review": ("fracdata.review", "human review in Label Studio: gold benchmark (2+ annotators, kappa), GPT audit, manual collection"),
    "synth": ("fracdata.synth", "generate the embedded synthetic fractograph corpus (manifest, labels, manual, gold)"),
    "build": ("fracdata.dataset", "validate, dedup, split, augment and render a LlamaFactory dataset"),
    "tiny-model": ("fracdata.train.tiny_model", "build a tiny random Qwen3-VL offline (for tests and the demo only)"),
    "recipes": ("fracdata.train.recipes", "resolve and print LlamaFactory recipes (overlays, --set)"),
    "train": ("fracdata.train", "validate a recipe with LlamaFactory's parser and launch training"),
    "probe": ("fracdata.probe", "frozen-encoder probe: out-of-fold feature probabilities and suspect labels (confident learning)"),
    "release": ("fracdata.release", "share a dataset (Parquet + Hub card + dataset_info.json) or a model card; --push to the Hub"),
    "calibrate": ("fracdata.calibrate", "fit a local checkpoint's per-feature probabilities on the val split (calibration.json)"),
    "analyze": ("fracdata.analyze", "specialist features + a generalist's cited report for fractographs, or a watched folder"),
    "serve": ("fracdata.serve", "serve analyze over HTTP (FastAPI): POST /analyze, GET /healthz, one HTML page"),
    "demo": ("fracdata.demo", "run the whole study in miniature, offline, and print the scores"),
    "taxonomy": ("fracdata.taxonomy", "print the feature taxonomy (ids, names, groups)"),
}


class Parser(argparse.ArgumentParser):
    """argparse, with its usage errors as one `error:` line, exit 2, as every other refusal: a bad
    value names its flag (`error: fracdata label: argument --rpm: must be a finite number > 0,
    got '0' (see fracdata label --help)`)."""

    def error(self, message):
        self.exit(2, f"error: {self.prog}: {escape(message)} (see {self.prog} --help)\n")


def dispatch(prog: str, description: str, version: str, commands: dict[str, tuple[str, str]],
             argv: list[str] | None = None) -> int:
    """Parse argv, import only the chosen command's module, run it; FracdataError (or an OSError
    naming a file) -> one line, exit 2; an argument that is not UTF-8 -> one line, exit 2.

    Shared by `fracdata` and `fracbench`, so both CLIs behave the same way.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    bad = next((a for a in argv if escape(a) != a), None)
    if bad is not None:  # bytes that are not UTF-8 arrive as lone surrogates: they could be written nowhere
        print(f"error: argument {escape(bad)!r} is not valid UTF-8: fracdata writes paths and names into UTF-8 "
              "files; rename the file or pass another value", file=sys.stderr)
        return 2
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = Parser(prog=prog, description=description)
    parser.add_argument("--version", action="version", version=f"{prog} {version}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module, help_text) in commands.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            importlib.import_module(module).add_arguments(p)
    args = parser.parse_args(argv)
    module = importlib.import_module(commands[args.command][0])
    wants = getattr(module, "artifact", None)
    try:
        if wants is not None and wants(args):
            with artifact_stdout() as out:
                args.artifact_stream = out
                return int(module.run(args) or 0)
        return int(module.run(args) or 0)
    except FracdataError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:  # a dependency of another extra: say which, in one line
        if (e.name or "").split(".")[0] in ("fracdata", "fracbench"):
            raise
        from fracdata.provenance import install_hint

        print(f"error: {prog} {args.command} needs {e.name}, which is not installed: {install_hint(e.name)}",
              file=sys.stderr)
        return 2
    except BrokenPipeError:  # `fracdata taxonomy | head`: the reader left; stop quietly, as Unix tools do
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())  # so the interpreter's final flush cannot fail again
        return 141  # 128 + SIGPIPE, what a shell reports for a tool killed by it
    except OSError as e:  # a file the system refused (a read-only --out, a symlink loop): it names the file
        if e.filename is None:
            raise
        print(f"error: {escape(str(e.filename))}: {e.strerror or e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130


@contextlib.contextmanager
def artifact_stdout():
    """Point fd 1 (and sys.stdout) at stderr for the duration; yield a stream onto the real stdout.

    The fd-level switch also catches output from handlers bound to the old sys.stdout (LlamaFactory's
    logger is a StreamHandler(sys.stdout) created at import), C extensions and child processes.
    Under a test's sys.stdout capture (no fd 1 behind it) the artifact goes to that capture.
    """
    sys.stdout.flush()
    try:
        real = sys.stdout.fileno() == 1
    except (AttributeError, OSError, io.UnsupportedOperation, ValueError):
        real = False
    saved = os.dup(1)
    out = open(os.dup(saved), "w", encoding=getattr(sys.stdout, "encoding", None) or "utf-8") if real else sys.stdout
    previous = sys.stdout
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    try:
        yield out
    finally:
        sys.stderr.flush()
        out.flush()
        sys.stdout = previous
        os.dup2(saved, 1)
        os.close(saved)
        if real:
            out.close()


def artifact_stream(args):
    """Where a command writes its artifact: the real stdout under dispatch, else sys.stdout."""
    return getattr(args, "artifact_stream", None) or sys.stdout


def main(argv: list[str] | None = None) -> int:
    return dispatch("fracdata", "fracdata: mine -> label -> build -> train -> bench, one record id end to end.",
                    __version__, COMMANDS, argv)


def parse_shard(text: str | None) -> tuple[int, int]:
    """`--shard i/N` (harvest, mine) -> (i, N); none given -> (0, 1), the whole input."""
    if text is None:
        return 0, 1
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise FracdataError(f"--shard {text!r}: expected i/N with integers, e.g. 0/16") from None
    if not (n >= 1 and 0 <= i < n):
        raise FracdataError(f"--shard {text}: need 0 <= i < N (i counts from 0, as in --array=0-{max(n, 1) - 1})")
    return i, n


if __name__ == "__main__":
    raise SystemExit(main())

