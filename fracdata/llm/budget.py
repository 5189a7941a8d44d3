"""The one budget that `label`, `analyze` and `fracbench` use.

The budget reserves each request's worst case before it is sent: `input_bound` input tokens (an
upper bound, never an estimate, fracdata/llm/prices.py) at the full input price + every allowed
output token, and settles to the billed cost after, so with any concurrency spent + in-flight
worst cases <= limit holds at every moment; once one request does not fit, nothing more is sent.
"""

from __future__ import annotations

import threading

from fracdata.llm.prices import cost_usd


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
