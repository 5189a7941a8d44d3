"""API models, in one place: the openai SDK client, key redaction, error text, Responses output,
token usage, the price table, the one budget that `label`, `analyze` and `fracbench` use, and the
rate limit and backoff of every HTTP client in fracdata.

    clients.py    the SDK client (each request bounded in all by deadline.py), redact, error text
    responses.py  a Responses object's text or failure reason; token usage of any answer
    prices.py     fracdata/prices.yaml, the billed cost, an upper bound on a request's input tokens
    budget.py     Budget: reserve the worst case before a request, settle to the billed cost after
    ratelimit.py  requests/tokens per minute, Retry-After cool-downs, jittered backoff (backoff_s)

Keys live in environment variables only and never reach a file or a log (clients.redact).
"""

from fracdata.llm.budget import DEFAULT_BUDGET_USD, Budget, budget_line
from fracdata.llm.clients import DEFAULT_KEY_ENV, KEYLESS, client, error_message, missing_key, redact, sdk_error
from fracdata.llm.prices import (IMAGE_PATCH_MULTIPLIER, PRICE_KEYS, cost_usd, image_tokens_bound, input_bound,
                                 load_prices, model_prices)
from fracdata.llm.responses import responses_output, usage_from

__all__ = ["DEFAULT_BUDGET_USD", "DEFAULT_KEY_ENV", "IMAGE_PATCH_MULTIPLIER", "KEYLESS", "PRICE_KEYS", "Budget", "budget_line", "client", "cost_usd",
           "error_message", "image_tokens_bound", "input_bound", "load_prices", "missing_key", "model_prices",
           "redact", "responses_output", "sdk_error", "usage_from"]
