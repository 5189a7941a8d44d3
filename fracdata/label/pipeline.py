"""One `fracdata label` run once its locks are held: the budget, the manifest's items, the cache, the
sync or batch requests, then labels / failures / rejects written beside --out (atomically) and counted.
The command line and the locks are label/cli.py."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from fracdata.errors import FracdataError


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


def label(args, params, prompter, manifest: Path, out: Path, paths: dict) -> int:
    from fracdata.label.cache import Cache
    from fracdata.llm.budget import DEFAULT_BUDGET_USD, Budget, budget_line
    from fracdata.llm.prices import load_prices, model_prices
    from fracdata.label.items import count_reasons, read_items

    prices = load_prices(args.prices)
    price = model_prices(prices, params.model)
    if price is None and args.budget_usd is not None:
        raise FracdataError(f"{args.prices or 'fracdata/prices.yaml'}: no price for model {params.model!r}; "
                            "add it (a local model: all zeros) to use --budget-usd")
    discount = prices["batch_discount"] if args.mode == "batch" else 1.0
    limit = args.budget_usd if args.budget_usd is not None else DEFAULT_BUDGET_USD["label"]
    budget = Budget(limit if price is not None else None, price, params.max_output_tokens, discount)
    print(budget_line(limit, args.budget_usd is not None, params.model, price is not None))

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

    args.spent_usd = budget.spent  # --models: what the next labeller's budget has left
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
          + (f" of budget ${budget.limit:.2f}" if budget.limit is not None else ""))
    return 1 if failures else 0


