"""`fracdata label --models A B ...`: several labellers over the same images, one labels file each.

A model spec is either a model name, asked with this run's flags (--api, OPENAI_BASE_URL,
OPENAI_API_KEY), or a YAML model entry of kind `openai-compatible`, the format of the model entries
fracbench scores (fracdata/inference/models/*.yaml) (Gemini's OpenAI-compatible endpoint, a vLLM or
llamafactory-cli server):

    name: gemini-3.1-pro
    kind: openai-compatible
    base_url: https://generativelanguage.googleapis.com/v1beta/openai/
    model: ${GEMINI_MODEL:-gemini-3.1-pro-preview}
    api_key_env: GEMINI_API_KEY          # absent: a keyless local server
    decoding: {reasoning_effort: low, max_completion_tokens: 4096}

An entry is asked through Chat Completions (`api: responses` in it for OpenAI's Responses API);
decoding keys temperature, reasoning_effort, max_completion_tokens / max_tokens apply; its
`prompt` and `served_path` are fracbench's and do not apply to labelling (the labeller has its
own prompt). --out is then a folder: OUT/<name>.jsonl per labeller, each with its own cache,
lock and sidecars beside it, so a rerun pays for nothing twice and `fracdata labels aggregate
--labels OUT/*.jsonl` combines them. --budget-usd is the budget of the whole run: each labeller
gets what the ones before it left. The models run one after the other; the exit status is the
worst of theirs (1: some images failed).
"""

from __future__ import annotations

import contextlib
import copy
import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, ValidationError

from fracdata.errors import FracdataError
from fracdata.files import expand_env
from fracdata.records import _Strict

NAME_RE = r"^[A-Za-z0-9._+-]+$"
DECODING = {"temperature", "reasoning_effort", "max_completion_tokens", "max_tokens"}


class Entry(_Strict):
    name: str = Field(pattern=NAME_RE)
    kind: Literal["openai-compatible"]
    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    api: Literal["responses", "chat"] = "chat"
    decoding: dict = Field(default_factory=dict)
    concurrency: int | None = Field(None, ge=1)
    max_retries: int | None = Field(None, ge=0)
    timeout_s: float | None = Field(None, gt=0)
    prompt: str | None = None  # fracbench's task prompt variant: not used by the labeller
    served_path: str | None = None  # fracbench's provenance of a served checkpoint: not used here


def load_entry(spec: str) -> Entry:
    """A YAML entry (a path ending .yaml/.yml), or a bare model name asked with the run's own flags."""
    from fracdata.files import load_mapping

    p = Path(spec)
    if p.suffix not in (".yaml", ".yml"):
        if not re.match(NAME_RE, spec):
            raise FracdataError(f"--models {spec!r}: not a model name (letters, digits, . _ + -) nor a .yaml entry")
        return Entry(name=spec, kind="openai-compatible", model=spec, api="responses")  # api: the run's --api
    if not p.is_file():
        raise FracdataError(f"{p}: model entry not found")
    data = load_mapping(p, "model entry")
    data.setdefault("name", p.stem)
    for key in ("model", "base_url"):
        if isinstance(data.get(key), str):
            data[key] = expand_env(data[key], f"{p}: {key}")
    try:
        entry = Entry.model_validate(data)
    except ValidationError as e:
        first = e.errors()[0]
        raise FracdataError(f"{p}: {'.'.join(map(str, first['loc'])) or 'entry'}: {first['msg']}") from None
    bad = set(entry.decoding) - DECODING
    if bad:
        raise FracdataError(f"{p}: decoding keys {sorted(bad)} do not apply to labelling (allowed: {sorted(DECODING)})")
    return entry


@contextlib.contextmanager
def _endpoint(entry: Entry, is_file: bool):
    """OPENAI_BASE_URL / OPENAI_API_KEY as the entry asks, for the duration of its run."""
    if not is_file:
        yield
        return
    saved = {k: os.environ.get(k) for k in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    try:
        if entry.base_url:
            os.environ["OPENAI_BASE_URL"] = entry.base_url
        else:
            os.environ.pop("OPENAI_BASE_URL", None)
        os.environ["OPENAI_API_KEY"] = os.environ[entry.api_key_env] if entry.api_key_env else "no-key"
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def run_models(args, run_one) -> int:
    """Run `run_one(args)` once per --models spec, each into OUT/<name>.jsonl; the worst exit status."""
    out = Path(args.out)
    if out.suffix == ".jsonl" or out.is_file():
        raise FracdataError(f"{out}: with --models, --out is a folder (OUT/<name>.jsonl per labeller)")
    if args.cache:
        raise FracdataError("--cache names one cache; with --models each labeller keeps its own beside its file")
    specs = [(s, Path(s).suffix in (".yaml", ".yml")) for s in args.models]
    entries = [(load_entry(s), f) for s, f in specs]  # all first: a bad entry fails before anything is paid
    names = [e.name for e, _ in entries]
    if len(set(names)) != len(names):
        raise FracdataError(f"--models: two labellers named {next(n for n in names if names.count(n) > 1)!r}")
    for e, is_file in entries:
        if is_file and e.api_key_env and not os.environ.get(e.api_key_env):
            raise FracdataError(f"model {e.name}: {e.api_key_env} is not set (its entry's api_key_env)")
    out.mkdir(parents=True, exist_ok=True)
    worst, remaining, done = 0, args.budget_usd, []
    for e, is_file in entries:
        sub = copy.copy(args)
        sub.models, sub.out, sub.model = None, str(out / f"{e.name}.jsonl"), e.model
        if is_file:
            sub.api = e.api
            d = e.decoding
            sub.temperature = d.get("temperature", args.temperature)
            sub.effort = d.get("reasoning_effort", args.effort)
            sub.max_output_tokens = d.get("max_completion_tokens", d.get("max_tokens", args.max_output_tokens))
            sub.concurrency = e.concurrency or args.concurrency
            sub.max_retries = args.max_retries if e.max_retries is None else e.max_retries
            sub.timeout = e.timeout_s or args.timeout
        sub.budget_usd = remaining
        print(f"== labeller {e.name}: model {e.model} via {'its entry ' + e.base_url if is_file and e.base_url else 'this run'}"
              f" ({sub.api}) -> {sub.out}", flush=True)
        with _endpoint(e, is_file):
            rc = run_one(sub)
        worst = max(worst, rc)
        if remaining is not None:
            remaining = max(0.0, remaining - getattr(sub, "spent_usd", 0.0))
        done.append((e.name, sub.out, rc))
    print(f"labelled with {len(done)} models: " + ", ".join(f"{n} -> {p} (exit {rc})" for n, p, rc in done))
    print(f"next: fracdata labels aggregate --labels {' '.join(p for _, p, _ in done)} --out {out / 'aggregate.jsonl'}")
    return worst
