"""Token usage and its price: per call, a running total, and a budget that is never exceeded.

The budget reserves each request's worst case (estimated input at full price plus every
allowed output token) before sending it, and settles to the billed usage afterwards, so with
any concurrency spent + in-flight worst cases <= budget holds at every moment.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path


from fracdata.errors import FracdataError
from fracdata.files import load_mapping

PRICE_KEYS = {"input", "cached_input", "output"}


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


def usage_from(obj: dict | None) -> dict[str, int] | None:
    """Responses or Chat usage block -> {input_tokens, cached_tokens, output_tokens, reasoning_tokens}."""
    if not obj:
        return None
    if "input_tokens" in obj:
        inp, out = obj.get("input_tokens"), obj.get("output_tokens")
        cached = (obj.get("input_tokens_details") or {}).get("cached_tokens")
        reasoning = (obj.get("output_tokens_details") or {}).get("reasoning_tokens")
    else:
        inp, out = obj.get("prompt_tokens"), obj.get("completion_tokens")
        cached = (obj.get("prompt_tokens_details") or {}).get("cached_tokens")
        reasoning = (obj.get("completion_tokens_details") or {}).get("reasoning_tokens")
    return {"input_tokens": int(inp or 0), "cached_tokens": int(cached or 0),
            "output_tokens": int(out or 0), "reasoning_tokens": int(reasoning or 0)}


def cost_usd(usage: dict | None, p: dict | None, discount: float = 1.0) -> float:
    """Uncached input + cached input + output (reasoning tokens are inside output_tokens)."""
    if not usage or p is None:
        return 0.0
    fresh = usage["input_tokens"] - usage["cached_tokens"]
    return discount * (fresh * p["input"] + usage["cached_tokens"] * p["cached_input"]
                       + usage["output_tokens"] * p["output"]) / 1e6


class Budget:
    def __init__(self, limit_usd: float | None, p: dict | None, max_output_tokens: int, discount: float = 1.0):
        self.limit, self.p, self.max_out, self.discount = limit_usd, p, max_output_tokens, discount
        self.spent = 0.0  # billed this run
        self.reserved = 0.0  # worst case of requests in flight
        self.stopped = False  # once a request does not fit, nothing more is sent

    def worst_case(self, est_input_tokens: int) -> float:
        if self.p is None:
            return 0.0
        return self.discount * (est_input_tokens * self.p["input"] + self.max_out * self.p["output"]) / 1e6

    def reserve(self, usd: float) -> bool:
        if self.stopped or (self.limit is not None and self.spent + self.reserved + usd > self.limit):
            self.stopped = True
            return False
        self.reserved += usd
        return True

    def settle(self, reserved: float, usage: dict | None) -> float:
        cost = cost_usd(usage, self.p, self.discount)
        self.reserved -= reserved
        self.spent += cost
        return cost
