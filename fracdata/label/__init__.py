"""`fracdata label`: manifest images -> GPT labels (LabelRecord JSONL, kind "gpt"), resumable.

    fracdata label --manifest data/mined/manifest.jsonl --out data/labels/gpt.jsonl [--mode batch]
    fracdata label --gold data/gold.jsonl --out data/labels/gold-gpt.jsonl   # the teacher's benchmark row

Any OpenAI-compatible endpoint works through the SDK's OPENAI_API_KEY / OPENAI_BASE_URL.
Beside --out it writes <stem>.failures.jsonl (failed images with their reason, asked again
next run), <stem>.rejects.jsonl (manifest lines it cannot label) and keeps <stem>.cache.sqlite
(completed answers; the run's real state) and, in batch mode, <stem>.batch/ (shards, state).
One run per output: <stem>.lock and <cache>.lock hold OS locks for the whole run, so a second
run on the same output or the same cache stops with one line naming the first
(pid, host, since) instead of paying for the same images again; the lock dies with its process.
Exit status: 0 all labelled, 1 some images failed (see the failures file), 2 error.
Modules: prompt (request), schema (answer), client (call + classify), ratelimit, cache, sync
(realtime workers), batch (Batch API), items (manifest); clients, prices and the budget are
fracdata.llm's.
"""

from __future__ import annotations

import os
from contextlib import ExitStack
from pathlib import Path

from fracdata.errors import FracdataError


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


def sidecars(out: Path, cache: str | None) -> dict[str, Path]:
    stem = out.with_suffix("") if out.suffix == ".jsonl" else out
    return {"failures": Path(f"{stem}.failures.jsonl"), "rejects": Path(f"{stem}.rejects.jsonl"),
            "cache": Path(cache) if cache else Path(f"{stem}.cache.sqlite"), "batch": Path(f"{stem}.batch"),
            "lock": Path(f"{stem}.lock")}


def _write_atomic(records, path: Path) -> int:
    from fracdata.records import dump_jsonl

    return dump_jsonl(records, path, durable=True)


def label_records(items, cached: dict, prompter) -> list:
    from fracdata.records import Labeler, LabelRecord

    p, out = prompter.params, []
    for item in items:
        row = cached.get(item.key)
        if row is None:
            continue
        labeler = Labeler(kind="gpt", model=p.model, prompt_version=prompter.prompt_version,
                          taxonomy_version=prompter.taxonomy.version, effort=p.effort if p.api == "responses" else None,
                          response_model=row["response_model"], request_id=row["request_id"], usage=row["usage"],
                          created=row["created"], cache_key=item.key,
                          inputs=prompter.inputs(item.caption, item.excerpts))
        out.append(LabelRecord(id=item.id, labeler=labeler, **row["fields"]))
    return out


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
        return _run(args, params, prompter, manifest, out, paths)


def _run(args, params, prompter, manifest: Path, out: Path, paths: dict) -> int:
    from collections import Counter

    from fracdata.label.cache import Cache
    from fracdata.llm import Budget, load_prices, model_prices
    from fracdata.label.items import count_reasons, read_items

    prices = load_prices(args.prices)
    price = model_prices(prices, params.model)
    if price is None and args.budget_usd is not None:
        raise FracdataError(f"{args.prices or 'fracdata/prices.yaml'}: no price for model {params.model!r}; "
                            "add it (a local model: all zeros) to use --budget-usd")
    discount = prices["batch_discount"] if args.mode == "batch" else 1.0
    budget = Budget(args.budget_usd, price, params.max_output_tokens, discount)

    items, rejects = read_items(manifest, prompter, gold=args.gold is not None)
    cache = Cache(paths["cache"])
    try:
        cached_before, stale = cache.fresh(items)
        todo = [i for i in items if i.key not in cached_before]
        print(f"read {manifest}: {len(items) + len(rejects)} lines, {len(items)} images to label, "
              f"{len(rejects)} rejected ({count_reasons(rejects)}); {len(items) - len(todo)} already in "
              f"{paths['cache']}, {len(todo)} to ask"
              + (f" ({stale} answered for another caption or excerpts)" if stale else ""))
        if args.mode == "batch":
            from fracdata.label.batch import label_batch

            failures, stats = label_batch(items, todo, prompter, cache, budget, args, manifest, paths["batch"])
        else:
            from fracdata.label.sync import label_sync

            failures, stats = label_sync(todo, prompter, cache, budget, args, manifest, len(items) - len(todo))
        cached, _ = cache.fresh(items)
    finally:
        cache.close()

    labels = label_records(items, cached, prompter)
    n = _write_atomic(labels, out)
    failed_ids = {f.id for f in failures}
    pending = [i for i in items if i.key not in cached and i.id not in failed_ids]  # batch: still running
    _write_atomic(failures, paths["failures"])
    _write_atomic(rejects, paths["rejects"])
    assert n + len(failures) + len(pending) == len(items), "every image is labelled, failed or pending"
    used = Counter(" + ".join(r.labeler.inputs) for r in labels)
    print(f"wrote {out}: {n} labels ({len(items) - len(todo)} from cache, {n - len(items) + len(todo)} new); "
          "inputs: " + (", ".join(f"{k} on {v}" for k, v in sorted(used.items())) or "none"))
    print(f"wrote {paths['failures']}: {len(failures)} failures ({count_reasons(failures)}); "
          "a rerun asks them again" if failures else f"wrote {paths['failures']}: 0 failures")
    print(f"wrote {paths['rejects']}: {len(rejects)} rejects")
    if pending:
        print(f"{len(pending)} images are in batches still running: run again with --resume")
    cost = f"${budget.spent:.4f}" if price is not None else f"unknown (no price for {params.model!r})"
    extra = ", ".join(f"{k} {v}" for k, v in sorted(stats.items()) if k not in ("labelled", "cached"))
    print(f"requests: {extra or 'none'}; cost this run: {cost}"
          + (f" of budget ${args.budget_usd:.2f}" if args.budget_usd is not None else ""))
    return 1 if failures else 0

