"""API models, in one place: the openai SDK client, key redaction, error text, Responses output,
token usage, the price table and the one budget that `label`, `analyze` and `fracbench` use.

Keys live in environment variables only, named by the caller (`OPENAI_API_KEY` for the
labeller, a model entry's `api_key_env` elsewhere), and never reach a file or a log: every
error text that may be written goes through `redact`.

Every request through `client` is bounded in all by its timeout (fracdata/llm/deadline.py), not per
read. A key must be printable ASCII (it goes in an HTTP header); what a server sends back is
redacted where it enters (`redact` on answer text), so a key echoed inside an answer is never
written, whatever its length.

Cost = (uncached input * input + cached input * cached_input + output * output) / 1e6 USD, from
fracdata/prices.yaml (reasoning tokens are inside output). The budget reserves each request's
worst case before it is sent: `input_bound` input tokens (an upper bound, never an estimate) at
the full input price + every allowed output token, and settles to the billed cost after, so with
any concurrency spent + in-flight worst cases <= limit holds at every moment; once one request
does not fit, nothing more is sent.
"""

from __future__ import annotations

import json
import math
import os
import re
import threading
from importlib import resources
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import load_mapping

KEYLESS = "not-needed"  # a keyless local server still needs a non-empty string for the SDK
DEFAULT_KEY_ENV = "OPENAI_API_KEY"  # the SDK's own variable: always redacted
PRICE_KEYS = {"input", "cached_input", "output"}
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{4,}|Bearer\s+\S+)")


# -- keys and clients --------------------------------------------------------------------------
def redact(text: str, *env_names: str | None) -> str:
    """`text` without the values of OPENAI_API_KEY and the named key variables (whatever their
    length or shape: a Gemini key is not `sk-...`; a 1-character key too, so choose keys that
    do not occur in answers) and without anything shaped like a key."""
    if not isinstance(text, str):
        return text
    for name in {DEFAULT_KEY_ENV, *env_names} - {None}:
        value = os.environ.get(name)
        if value:
            text = text.replace(value, "***")
    return _KEYLIKE.sub("***", text)


def missing_key(env_name: str | None) -> str | None:
    """The variable to set when one is named and it is unset or empty; else None."""
    return env_name if env_name and not os.environ.get(env_name) else None


def client(base_url: str | None = None, key_env: str | None = DEFAULT_KEY_ENV, max_retries: int = 2,
           timeout: float = 600.0, asynchronous: bool = False):
    """The openai SDK client. `base_url` None: the SDK's OPENAI_BASE_URL or api.openai.com;
    `key_env` None: a keyless local server (KEYLESS is sent)."""
    import openai

    from fracdata.llm.deadline import http_client

    key = os.environ.get(key_env) if key_env else KEYLESS
    if key and not (key.isascii() and key.isprintable()):
        raise FracdataError(f"{key_env} holds a character that cannot go in an HTTP header (non-ASCII, a newline "
                            "or a control character): check the variable's value")
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    try:
        return cls(base_url=base_url, api_key=key, max_retries=max_retries, timeout=timeout,
                   http_client=http_client(timeout, asynchronous))
    except openai.OpenAIError as e:
        raise FracdataError(f"cannot create the OpenAI client: {redact(str(e), key_env)} "
                            f"(set {key_env}; any value for a local server)") from None


def error_message(e) -> str:
    """The server's own message from an SDK APIStatusError: the body's `message`, or a nested
    `{"error": {"message": ...}}` one, else the SDK's summary. Not redacted: callers do that."""
    body = e.body if isinstance(getattr(e, "body", None), dict) else {}
    nested = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(body.get("message") or nested.get("message") or e.message)


def sdk_error(e, *env_names: str | None) -> str:
    """One redacted line for an SDK error after its retries: `HTTP 500: <server message>` for a
    status error, `<ExceptionName>: <text>` for a refused connection or a timeout."""
    import openai

    text = f"HTTP {e.status_code}: {error_message(e)}" if isinstance(e, openai.APIStatusError) \
        else f"{type(e).__name__}: {e}"
    return redact(" ".join(text.split()), *env_names)


# -- answers -----------------------------------------------------------------------------------
def responses_output(obj: dict) -> tuple[str | None, str | None, str]:
    """A Responses API object -> (answer text, None, "") or (None, failure reason, detail).
    Reasons: content_filter, incomplete (e.g. max_output_tokens), response_failed, refusal, and
    malformed_response for a body of the wrong shape (any server may answer anything)."""
    status = obj.get("status")
    if status == "incomplete":
        why = _field(obj, "incomplete_details", "reason") or "unknown"
        return None, "content_filter" if why == "content_filter" else "incomplete", f"response incomplete: {why}"
    if status != "completed":
        return None, "response_failed", f"response status {status}: {_field(obj, 'error', 'message')}"
    output = obj.get("output")
    if not isinstance(output, list):
        return None, "malformed_response", f"response output is a JSON {type(output).__name__}, not a list"
    parts = [c for o in output if isinstance(o, dict) and o.get("type") == "message"
             for c in (o.get("content") if isinstance(o.get("content"), list) else []) if isinstance(c, dict)]
    refusals = [str(c.get("refusal") or "") for c in parts if c.get("type") == "refusal"]
    if refusals:
        return None, "refusal", refusals[0]
    return "".join(c["text"] for c in parts if c.get("type") == "output_text" and isinstance(c.get("text"), str)), None, ""


def _field(obj: dict, key: str, sub: str):
    inner = obj.get(key)
    return inner.get(sub) if isinstance(inner, dict) else None


def usage_from(obj: dict | None) -> dict[str, int] | None:
    """Responses or Chat usage block -> {input_tokens, cached_tokens, output_tokens, reasoning_tokens};
    None when there is none or it is not a block of counts."""
    if not isinstance(obj, dict) or not obj:
        return None
    if "input_tokens" in obj:
        inp, out = obj.get("input_tokens"), obj.get("output_tokens")
        cached, reasoning = _field(obj, "input_tokens_details", "cached_tokens"), _field(obj, "output_tokens_details", "reasoning_tokens")
    else:
        inp, out = obj.get("prompt_tokens"), obj.get("completion_tokens")
        cached = _field(obj, "prompt_tokens_details", "cached_tokens")
        reasoning = _field(obj, "completion_tokens_details", "reasoning_tokens")
    counts = {"input_tokens": inp, "cached_tokens": cached, "output_tokens": out, "reasoning_tokens": reasoning}
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in counts.values()):
        return None
    return {k: int(v or 0) for k, v in counts.items()}


# -- what a request may cost -------------------------------------------------------------------
IMAGE_PATCH_MULTIPLIER = 2.46  # the largest OpenAI publishes for patch-counted models (gpt-4.1-nano)


def image_tokens_bound(size: tuple[int, int]) -> int:
    """Input tokens one high-detail image can cost, from its pixel count: the larger of OpenAI's two
    published rules, each taken at its most expensive reading.
    Tiles (gpt-4o, gpt-5.x): fit 2048 px, then scale (up or down) to a 768-px short side; 85 + 170
    per 512-px tile: 1536 x 1024 -> 1152 x 768 -> 3 x 2 tiles -> 1,105; at most 8 tiles = 1,445.
    Patches (gpt-4.1-mini/nano, gpt-5-mini, o4-mini): 32-px patches, at most 1,536, x the largest
    multiplier 2.46: 1536 x 1024 -> 48 x 32 = 1,536 patches -> 3,779; 512 x 384 -> 192 -> 473."""
    w, h = size
    s = min(1.0, 2048 / max(w, h))
    tw, th = w * s, h * s
    s = 768 / min(tw, th)
    tiles = 85 + 170 * math.ceil(tw * s / 512) * math.ceil(th * s / 512)
    patches = min(1536, math.ceil(w / 32) * math.ceil(h / 32))
    return max(tiles, math.ceil(patches * IMAGE_PATCH_MULTIPLIER))


def input_bound(body: dict, image_sizes) -> int:
    """An upper bound on a request's input tokens: the UTF-8 bytes of its JSON body with the image
    data left out (instructions, text, schema, keys and all: no tokenizer makes a token of less
    than one byte, so no script, not even one of ~1 token per character, exceeds it) plus
    `image_tokens_bound` per image."""
    def strip(v):
        if isinstance(v, dict):
            return {k: strip(x) for k, x in v.items()}
        if isinstance(v, list):
            return [strip(x) for x in v]
        return "" if isinstance(v, str) and v.startswith("data:image/") else v
    return len(json.dumps(strip(body), ensure_ascii=False).encode()) + sum(image_tokens_bound(s) for s in image_sizes)


# -- prices and budget -------------------------------------------------------------------------
def load_prices(path: str | Path | None = None) -> dict:
    """{"batch_discount": float, "models": {name: {input, cached_input, output}}} (USD per 1M tokens)."""
    where = str(path) if path else "fracdata/prices.yaml"
    text = None if path else resources.files("fracdata").joinpath("prices.yaml").read_text()
    data = load_mapping(where, "price table", text)
    unknown = set(data) - {"batch_discount", "models"}
    if unknown or not isinstance(data.get("models"), dict):
        raise FracdataError(f"{where}: expected keys batch_discount, models; unknown {sorted(unknown)}")
    for name, p in data["models"].items():
        if not isinstance(p, dict) or set(p) != PRICE_KEYS:
            raise FracdataError(f"{where}: model {name!r} needs exactly {sorted(PRICE_KEYS)}, got {p!r}")
    data.setdefault("batch_discount", 1.0)
    return data


def model_prices(prices: dict, model: str) -> dict | None:
    """Prices for `model`, or for the longest listed name it starts with (dated snapshots)."""
    models = prices["models"]
    if model in models:
        return models[model]
    stems = [m for m in models if model.startswith(m + "-")]
    return models[max(stems, key=len)] if stems else None


def cost_usd(usage: dict | None, p: dict | None, discount: float = 1.0) -> float:
    """Uncached input + cached input + output (reasoning tokens are inside output_tokens)."""
    if not usage or p is None:
        return 0.0
    fresh = usage["input_tokens"] - usage["cached_tokens"]
    return discount * (fresh * p["input"] + usage["cached_tokens"] * p["cached_input"]
                       + usage["output_tokens"] * p["output"]) / 1e6


# Default caps on one run's spend, printed at start and raised with --budget-usd. label: ~3,000
# images at ~$0.03 each (gpt-5.2, high effort); analyze/serve: the generalist's reports over a
# run, a watch log or a server's life (~20 at gpt-5.5's worst case of $0.48 each).
DEFAULT_BUDGET_USD = {"label": 100.0, "analyze": 10.0}


def budget_line(limit: float | None, given: bool, model: str, priced: bool) -> str:
    """What a paying command prints at start about its cap."""
    if not priced:
        return (f"budget: none (no price for {model!r}, so this run's spend cannot be capped; add the model to "
                "--prices, all zeros for a local one)")
    return f"budget: ${limit:.2f} for this run ({'--budget-usd' if given else 'the default; raise it with --budget-usd'})"


class Budget:
    """Dollars a run may spend (`limit_usd` None: no cap) on one priced model; see the module doc.
    `spent_before` counts earlier runs (a watch log); `charge` adds a cost that was never
    reserved (a call that is made whatever the budget, e.g. analyze's specialist)."""

    def __init__(self, limit_usd: float | None, p: dict | None, max_output_tokens: int, discount: float = 1.0,
                 spent_before: float = 0.0):
        self.limit, self.p, self.max_out, self.discount = limit_usd, p, max_output_tokens, discount
        self.spent = spent_before  # billed
        self.reserved = 0.0  # worst case of requests in flight
        self.stopped = False  # once a request does not fit, nothing more is sent
        self._lock = threading.Lock()  # the serve app's threads share one budget

    def worst_case(self, input_bound_tokens: int) -> float:
        """`input_bound` tokens at the full input price (none assumed cached) + every output token."""
        if self.p is None:
            return 0.0
        return self.discount * (input_bound_tokens * self.p["input"] + self.max_out * self.p["output"]) / 1e6

    def reserve(self, usd: float) -> bool:
        with self._lock:
            if self.stopped or (self.limit is not None and self.spent + self.reserved + usd > self.limit):
                self.stopped = True
                return False
            self.reserved += usd
            return True

    def settle(self, reserved: float, usage: dict | None, answered: bool = False) -> float:
        """Replace a reservation by the billed cost of `usage`; returns that cost. An answer
        (`answered`) that came without a readable usage block is counted at its reservation: it
        was billed, by how much is unknown, and the budget must hold."""
        cost = reserved if answered and usage is None and self.p is not None else cost_usd(usage, self.p, self.discount)
        with self._lock:
            self.reserved -= reserved
            self.spent += cost
        return cost

    def charge(self, usd: float) -> None:
        with self._lock:
            self.spent += usd
