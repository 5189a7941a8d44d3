"""The `fracdata label` command line: arguments, their checks, the locks on the output and the cache,
then one run (label/pipeline.py)."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.label.pipeline import label, sidecars


def add_arguments(p) -> None:
    from fracdata import flags

    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="manifest JSONL (ManifestRecord per line)")
    src.add_argument("--gold", help="gold JSONL (GoldRecord per line): label the benchmark's images with their caption "
                                    "and excerpts when the records carry them (as the training labels were), never their "
                                    "features, for the teacher's row in fracbench (kind: labels)")
    p.add_argument("--out", required=True, help="labels JSONL to write (LabelRecord per line)")
    p.add_argument("--cache", help="SQLite cache (default: <out stem>.cache.sqlite beside --out)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out (or its failures/rejects/cache) that label did not write")
    p.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged one)")
    g = p.add_argument_group("request")
    g.add_argument("--api", choices=["responses", "chat"], default="responses",
                   help="Responses API (default) or Chat Completions (vLLM, Gemini, llamafactory-cli api)")
    g.add_argument("--model", default="gpt-5.2")
    g.add_argument("--models", nargs="+", metavar="SPEC",
                   help="several labellers, one labels file each in the folder --out: model names (asked with these "
                        "flags) or OpenAI-compatible YAML model entries (fracdata/inference/models/; fracdata/label/several.py)")
    g.add_argument("--effort", default="high", help="reasoning effort (Responses API)")
    g.add_argument("--max-side", type=flags.pixels, default=1536, help="re-encode images to at most this many px")
    g.add_argument("--image-format", choices=["jpeg", "png"], default="jpeg")
    g.add_argument("--max-output-tokens", type=flags.count, default=16000, help="includes reasoning tokens")
    g.add_argument("--temperature", type=flags.number(float, 0, 2), help="chat only; default 0 for --api chat")
    g.add_argument("--chat-format", choices=["json_schema", "text"], default="json_schema",
                   help="chat: send response_format (json_schema) or put the schema in the prompt (text)")
    g.add_argument("--max-excerpts", type=flags.number(int, 0), default=5)
    g.add_argument("--max-excerpt-chars", type=flags.number(int, 0), default=1500)
    g = p.add_argument_group("throughput")
    g.add_argument("--concurrency", type=flags.count, default=8, help="requests in flight")
    g.add_argument("--rpm", type=flags.positive, help="requests per minute limit")
    g.add_argument("--tpm", type=flags.positive, help="tokens per minute limit (estimated input + max output)")
    g.add_argument("--timeout", type=flags.positive, default=600.0,
                   help="seconds one request may take in all, however slowly the server answers (high effort is slow)")
    g.add_argument("--max-retries", type=flags.retries, default=5, help="retries on 429, 5xx, timeouts")
    g.add_argument("--backoff-base", type=flags.non_negative, default=1.0, help="seconds; doubled per retry, jittered")
    g = p.add_argument_group("cost")
    g.add_argument("--budget-usd", type=flags.non_negative,
                   help="stop before this run's spend could exceed it (default $100, printed at start)")
    g.add_argument("--prices", help="price table YAML (default: fracdata/prices.yaml)")
    g = p.add_argument_group("batch")
    g.add_argument("--mode", choices=["sync", "batch"], default="sync")
    g.add_argument("--resume", action="store_true", help="batch: poll, ingest finished batches, resubmit failures")
    g.add_argument("--wait", type=flags.non_negative, default=0.0, help="batch --resume: keep polling up to this many s")
    g.add_argument("--poll-interval", type=flags.positive, default=30.0)


def outputs(out: Path, paths: dict):
    """What a run writes, and how label knows its own earlier files (fracdata.files.check_outputs)."""
    from fracdata.files import Output, jsonl_of, sqlite_file
    from fracdata.records import LabelRecord, Reject

    return [Output(out, "labels file", jsonl_of(LabelRecord, "a LabelRecord")),
            Output(paths["failures"], "failures file", jsonl_of(Reject, "a label failure")),
            Output(paths["rejects"], "rejects file", jsonl_of(Reject, "a reject")),
            Output(paths["cache"], "label cache", sqlite_file), Output(paths["lock"], "lock file"),
            Output(Path(f"{paths['cache']}.lock"), "lock file")]


def run(args) -> int:
    from fracdata.files import check_outputs, exclusive
    from fracdata.label.prompt import Params, Prompter
    from fracdata.taxonomy import load_taxonomy

    if getattr(args, "models", None):
        from fracdata.label.several import run_models

        return run_models(args, run)
    if args.api == "chat" and args.temperature is None:
        args.temperature = 0.0  # llamafactory-cli api samples by default: labels must be repeatable
    if not os.environ.get("OPENAI_API_KEY"):
        raise FracdataError("OPENAI_API_KEY is not set: export it (any value for a local server without keys)")
    if args.resume and args.mode != "batch":
        raise FracdataError("--resume belongs to --mode batch (a sync run resumes by simply running again)")
    params = Params(api=args.api, model=args.model, effort=args.effort, max_side=args.max_side,
                    image_format=args.image_format, max_output_tokens=args.max_output_tokens,
                    temperature=args.temperature if args.api == "chat" else None, chat_format=args.chat_format,
                    max_excerpts=args.max_excerpts, max_excerpt_chars=args.max_excerpt_chars)
    prompter = Prompter(load_taxonomy(args.taxonomy), params)
    manifest, out = Path(args.manifest or args.gold), Path(args.out)
    paths = sidecars(out, args.cache)
    check_outputs(outputs(out, paths), [manifest, args.taxonomy, args.prices], overwrite=args.overwrite)
    with ExitStack() as locks:
        fix = "wait for it to finish (a second run would pay for the same images again)"
        # the output, and the cache (what is paid for), which --cache may share between outputs
        locks.enter_context(exclusive(paths["lock"], out, "fracdata label", fix))
        locks.enter_context(exclusive(f"{paths['cache']}.lock", paths["cache"], "fracdata label", fix))
        return label(args, params, prompter, manifest, out, paths)


