"""Realtime mode: `concurrency` async workers over the images that are not cached yet.

Each worker builds a request, reserves its worst-case cost, waits for the rate limiter, calls,
and commits a success to the cache before taking the next image; failures are collected with
their reason. Nothing is cached but a completed, schema-valid answer.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import datetime, timezone

from fracdata.label.client import call
from fracdata.label.prompt import IMAGE_ERRORS
from fracdata.llm.ratelimit import RateLimiter
from fracdata.records import Reject


def now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def failure(item, manifest, reason: str, detail: str) -> Reject:
    return Reject(stage="label", file=str(manifest), line=item.line, id=item.id, reason=reason, detail=detail)


async def _label(todo, prompter, cache, client, budget, limiter, args, manifest, stats, bar):
    failures: list[Reject] = []
    queue = list(reversed(todo))  # pop() from the end = manifest order

    async def worker():
        while queue:
            item = queue.pop()
            if budget.stopped:
                failures.append(failure(item, manifest, "budget_exhausted",
                                        f"not sent: --budget-usd {budget.limit} reached"))
                continue
            try:
                body, est, bound = await asyncio.to_thread(prompter.body, item.path, item.caption, item.excerpts)
            except IMAGE_ERRORS as e:  # unreadable, not an image, a decompression bomb, ...
                failures.append(failure(item, manifest, "unreadable_image", f"{item.path.name}: {e}"))
                continue
            worst = budget.worst_case(bound)
            if not budget.reserve(worst):
                failures.append(failure(item, manifest, "budget_exhausted",
                                        f"not sent: ${budget.spent + budget.reserved:.4f} spent or in flight, "
                                        f"this request could cost ${worst:.4f}, --budget-usd {budget.limit}"))
                continue
            out = await call(client, prompter.params.api, body, est, prompter, limiter,
                             max_retries=args.max_retries, backoff_base=args.backoff_base)
            cost = budget.settle(worst, out.usage, out.answered)
            stats["requests"] += out.attempts
            stats.update({f"retried {k}": v for k, v in out.retries.items()})
            if out.redacted:
                stats["answers that held the key (redacted)"] += 1
            if out.ok:
                cache.put(item.key, item.id, out.fields, out.request_id, out.response_model, out.usage, cost,
                          now_iso(), prompter.params.api, item.source)
                stats["labelled"] += 1
            else:
                rid = f" (request {out.request_id})" if out.request_id else ""
                failures.append(failure(item, manifest, out.reason, out.detail + rid))
            bar.update(1)
            bar.set_postfix_str(f"done {stats['labelled']} cached {stats['cached']} failed {len(failures)} "
                                f"cost ${budget.spent:.4f}", refresh=False)

    await asyncio.gather(*(worker() for _ in range(max(1, args.concurrency))))
    return failures


def label_sync(todo, prompter, cache, budget, args, manifest, n_cached: int):
    """Label `todo` (not cached) items; returns (failures, stats Counter)."""
    from tqdm import tqdm

    from fracdata.llm.clients import client as make_client

    stats = Counter(cached=n_cached)
    limiter = RateLimiter(args.rpm, args.tpm)

    async def main():
        client = make_client(max_retries=0, timeout=args.timeout, asynchronous=True)
        async with client:
            with tqdm(total=len(todo), unit="img", desc="label", disable=None) as bar:
                return await _label(todo, prompter, cache, client, budget, limiter, args, manifest, stats, bar)

    failures = asyncio.run(main())
    if limiter.waited_s:
        stats["seconds waited for rate limits"] = round(limiter.waited_s, 1)
    return failures, stats
