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
Modules: cli (the command line, locks), pipeline (one run: budget, cache, requests, outputs), prompt
(request), schema (answer), client (call + classify), cache, sync (realtime workers), batch (Batch API),
items (manifest), audit (`fracdata audit`), several (`--models`: one file per labeller), aggregate
and dawid_skene (`fracdata labels aggregate`); clients, prices, the budget and the rate limit are
fracdata.llm's.
"""

from fracdata.label.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
