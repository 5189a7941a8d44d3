"""What a request may cost: the price table (fracdata/prices.yaml), the billed cost of a usage block,
and an upper bound on a request's input tokens (text bytes + a per-image bound).

Cost = (uncached input * input + cached input * cached_input + output * output) / 1e6 USD
(reasoning tokens are inside output).
"""

from __future__ import annotations

import json
import math
from importlib import resources
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import load_mapping

PRICE_KEYS = {"input", "cached_input", "output"}
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

