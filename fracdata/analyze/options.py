"""The flags `fracdata analyze` and `fracdata serve` share, and the Analyzer they build.

Models are model entries (fracdata/inference/models/*.yaml or a YAML path), with fracbench's
`--model-path/--adapter/--base-url NAME=VALUE` overrides. The specialist is required (it is this
tool's point); the generalist defaults to the `gpt-5.5` entry, asked through the Responses API.
"""

from __future__ import annotations

import os
from pathlib import Path

from fracdata.errors import FracdataError

SPECIALIST_ENV = "FRACDATA_SPECIALIST"
DEFAULT_GENERALIST = "gpt-5.5"


def add_model_arguments(p) -> None:
    from fracdata import flags

    g = p.add_argument_group("models (model entries: a name in fracdata/inference/models or a YAML path)")
    g.add_argument("--specialist", default=os.environ.get(SPECIALIST_ENV),
                   help=f"the fine-tuned model (local checkpoint or endpoint); default ${SPECIALIST_ENV}")
    g.add_argument("--generalist", default=DEFAULT_GENERALIST,
                   help=f"the general model, asked through the Responses API (default {DEFAULT_GENERALIST}); "
                        "'none' for specialist findings only")
    g.add_argument("--task", default="fractography-v1", help="fracbench task whose prompt the specialist gets")
    g.add_argument("--models-dir", help="folder of model entries (default fracdata/inference/models)")
    g.add_argument("--model-path", action="append", metavar="NAME=PATH", help="override entry NAME's `path`")
    g.add_argument("--adapter", action="append", metavar="NAME=PATH", help="override entry NAME's `adapter`")
    g.add_argument("--base-url", action="append", metavar="NAME=URL", help="override entry NAME's `base_url`")
    g.add_argument("--review-threshold", type=float, default=0.9, metavar="T",
                   help="a feature is decided without a person when its calibrated probability is >= T (present) or "
                        "<= 1 - T (absent); otherwise the image `needs_person` (default 0.9; 0.5 < T <= 1)")
    g.add_argument("--max-output-tokens", type=flags.count,
                   help="generalist: reasoning + report tokens (default 16000; the entry's benchmark limit is not used)")
    g = p.add_argument_group("cost")
    g.add_argument("--budget-usd", type=flags.non_negative,
                   help="never send a request that could take the spend past this (default $10 a run, or a watch "
                        "log's or a server's life; printed at start)")
    g.add_argument("--prices", help="price table YAML (default fracdata/prices.yaml)")


def read_context(path: str | None) -> str | None:
    from fracdata.analyze.generalist import MAX_CONTEXT_CHARS

    if path is None:
        return None
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as e:
        raise FracdataError(f"{p}: cannot read the context file ({type(e).__name__}: {e})") from None
    if len(text) > MAX_CONTEXT_CHARS:
        raise FracdataError(f"{p}: context has {len(text):,} characters, more than {MAX_CONTEXT_CHARS:,}: shorten it")
    return text or None


def model_entry(args, ref: str):
    """The model entry `ref` with the command's --models-dir and --model-path/--adapter/--base-url overrides."""
    from fracdata.inference.entry import MODELS_DIR, load_model, parse_overrides

    overrides = {"path": parse_overrides(args.model_path, "--model-path"),
                 "adapter": parse_overrides(args.adapter, "--adapter"),
                 "base_url": parse_overrides(getattr(args, "base_url", None), "--base-url")}
    return load_model(ref, Path(args.models_dir) if args.models_dir else MODELS_DIR, overrides)


def build_analyzer(args, log=print, spent_before: float = 0.0):
    """The Analyzer for the parsed flags; refuses without a specialist, prints what it will use."""
    from fracdata.analyze.generalist import Generalist
    from fracdata.analyze.pipeline import Analyzer
    from fracdata.analyze.specialist import Specialist
    from fracdata.llm import DEFAULT_BUDGET_USD, budget_line, load_prices, missing_key
    from fracdata.taxonomy import load_taxonomy

    if not args.specialist:
        raise FracdataError(f"no specialist: pass --specialist ENTRY (a fracdata/inference/models entry such as tiny-ft, or "
                            f"a YAML path) or set {SPECIALIST_ENV}; the generalist alone is not an analysis")
    tax = load_taxonomy()
    spec_entry = model_entry(args, args.specialist)
    specialist = Specialist(spec_entry, tax, args.task, args.review_threshold)
    generalist, var = None, None
    if args.generalist and args.generalist.lower() != "none":
        g_entry = model_entry(args, args.generalist)
        if g_entry.kind != "openai-compatible":
            raise FracdataError(f"generalist {g_entry.name}: kind {g_entry.kind!r}; the generalist is asked through "
                                "the Responses API, so it must be an openai-compatible entry")
        var = missing_key(g_entry.api_key_env)
        if var:
            log(f"generalist {g_entry.name}: {var} is not set: specialist findings only (set {var} to add the report)")
        else:
            generalist = Generalist(g_entry, tax, args.max_output_tokens)
    prices = load_prices(args.prices)
    limit = args.budget_usd if args.budget_usd is not None else DEFAULT_BUDGET_USD["analyze"]
    analyzer = Analyzer(specialist, generalist, missing_key=var, prices=prices, budget_usd=limit,
                        spent_before=spent_before, budget_given=args.budget_usd is not None)
    specialist.load(log)
    log(f"specialist {spec_entry.name} ({spec_entry.kind}, {specialist.endpoint})"
        + (f"; {generalist.describe()}" if generalist else "; no generalist"))
    if generalist is not None and not analyzer.g_free:
        log(budget_line(limit, args.budget_usd is not None, generalist.entry.model, analyzer.g_price is not None)
            + (f"; ${spent_before:.4f} spent before, in the log" if spent_before else ""))
    return analyzer
