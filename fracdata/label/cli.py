"""The `fracdata label` command line: arguments, their checks, the locks on the output and the cache,
then one run (label/pipeline.py)."""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.label.pipeline import label, sidecars


def add_arguments(p) -> None:
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", help="manifest JSONL (ManifestRecord per line)")
    src.add_argument("--gold", help="gold JSONL (GoldRecord per line): label the benchmark's images with their caption "
                                    "and excerpts when the records carry them (as the training labels were), never their "
                                    "features, for the teacher's row in fracbench (kind: labels)")
    p.add_argument("--out", required=True, help="labels JSONL to write (LabelRecord per line)")
    p.add_argument("--cache", help="SQLite cache (default: <out stem>.cache.sqlite beside --out)")
    p.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged one)")
    g = p.add_argument_group("request")
    g.add_argument("--api", choices=["responses", "chat"], default="responses",
                   help="Responses API (default) or Chat Completions (vLLM, Gemini, llamafactory-cli api)")
    g.add_argument("--model", default="gpt-5.2")
    g.add_argument("--effort", default="high", help="reasoning effort (Responses API)")
    g.add_argument("--max-side", type=int, default=1536, help="re-encode images to at most this many px")
    g.add_argument("--image-format", choices=["jpeg", "png"], default="jpeg")
    g.add_argument("--max-output-tokens", type=int, default=16000, help="includes reasoning tokens")
    g.add_argument("--temperature", type=float, help="chat only; default 0 for --api chat")
    g.add_argument("--chat-format", choices=["json_schema", "text"], default="json_schema",
                   help="chat: send response_format (json_schema) or put the schema in the prompt (text)")
    g.add_argument("--max-excerpts", type=int, default=5)
    g.add_argument("--max-excerpt-chars", type=int, default=1500)
    g = p.add_argument_group("throughput")
    g.add_argument("--concurrency", type=int, default=8, help="requests in flight")
    g.add_argument("--rpm", type=float, help="requests per minute limit")
    g.add_argument("--tpm", type=float, help="tokens per minute limit (estimated input + max output)")
    g.add_argument("--timeout", type=float, default=600.0,
                   help="seconds one request may take in all, however slowly the server answers (high effort is slow)")
    g.add_argument("--max-retries", type=int, default=5, help="retries on 429, 5xx, timeouts")
    g.add_argument("--backoff-base", type=float, default=1.0, help="seconds; doubled per retry, jittered")
    g = p.add_argument_group("cost")
    g.add_argument("--budget-usd", type=float, help="stop before this run's spend could exceed it")
    g.add_argument("--prices", help="price table YAML (default: fracdata/prices.yaml)")
    g = p.add_argument_group("batch")
    g.add_argument("--mode", choices=["sync", "batch"], default="sync")
    g.add_argument("--resume", action="store_true", help="batch: poll, ingest finished batches, resubmit failures")
    g.add_argument("--wait", type=float, default=0.0, help="batch --resume: keep polling up to this many s")
    g.add_argument("--poll-interval", type=float, default=30.0)


def run(args) -> int:
    from fracdata.files import exclusive
    from fracdata.label.prompt import Params, Prompter
    from fracdata.taxonomy import load_taxonomy

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
    with ExitStack() as locks:
        fix = "wait for it to finish (a second run would pay for the same images again)"
        # the output, and the cache (what is paid for), which --cache may share between outputs
        locks.enter_context(exclusive(paths["lock"], out, "fracdata label", fix))
        locks.enter_context(exclusive(f"{paths['cache']}.lock", paths["cache"], "fracdata label", fix))
        return label(args, params, prompter, manifest, out, paths)


