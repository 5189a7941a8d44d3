"""One image -> one `Analysis`: specialist, then (when it can) the generalist, then the citation check.

Shared by `fracdata analyze`, its watch mode and `fracdata serve`. The specialist must answer:
its failure is an error naming its endpoint. The generalist may be absent (no key), over budget
or failing: the result is then the specialist's alone, with a flag that says why.
Cost: each call is priced from fracdata/prices.yaml by model name (a local checkpoint or a keyless
local server costs 0); `budget_usd` caps the sum with the labeller's budget (fracdata.llm.Budget):
each generalist request reserves its worst case (fracdata.llm.input_bound + every allowed output token)
before it is sent, and once one does not fit no further generalist request is sent.
"""

from __future__ import annotations

import io
import threading
from datetime import datetime, timezone

from fracdata.errors import FracdataError


def price_for(entry, prices: dict):
    """(USD-per-1M-token prices or None, free?) for an entry: local and keyless servers are free."""
    from fracdata.llm import model_prices

    if entry.kind == "local" or not entry.api_key_env:
        return None, True
    return model_prices(prices, entry.model), False


class Analyzer:
    def __init__(self, specialist, generalist=None, missing_key: str | None = None, prices: dict | None = None,
                 budget_usd: float | None = None, spent_before: float = 0.0):
        from fracdata.llm import Budget, load_prices

        self.specialist, self.generalist, self.missing_key = specialist, generalist, missing_key
        self.prices = prices or load_prices()
        self.s_price, self.s_free = price_for(specialist.entry, self.prices)
        self.g_price, self.g_free = price_for(generalist.entry, self.prices) if generalist else (None, True)
        # One budget for both calls: the specialist is charged after the fact (it always runs),
        # each generalist request reserves its worst case first.
        self.budget = Budget(budget_usd, None if self.g_free else self.g_price,
                             generalist.max_output_tokens if generalist else 0, spent_before=spent_before)
        if budget_usd is not None:
            for who, entry, price, free in (("specialist", specialist.entry, self.s_price, self.s_free),
                                            ("generalist", generalist.entry if generalist else None, self.g_price, self.g_free)):
                if entry is not None and price is None and not free:
                    raise FracdataError(f"fracdata/prices.yaml: no price for {who} model {entry.model!r}; add it "
                                        "(or pass --prices FILE) to use --budget-usd")
        self._lock = threading.Lock()  # one analysis at a time: a local model is not re-entrant

    def analyse(self, data: bytes, name: str, context: str | None = None):
        """Image bytes -> (Analysis, the decoded 8-bit image). Raises ImageReject for an image it
        cannot read, FracdataError when the specialist fails."""
        from fracdata import __version__
        from fracdata.analyze.schema import Analysis, Flag, SpecialistResult, check_citations
        from fracdata.images import Bounds, load_normalised
        from fracdata.llm import cost_usd
        from fracdata.records import sha256_bytes

        image = load_normalised(data, Bounds())
        flags: list[Flag] = []
        with self._lock:
            spec = self.specialist.analyse(image)
        s_cost = 0.0 if self.s_free else (cost_usd(spec["usage"], self.s_price) if self.s_price else None)
        spec["cost_usd"] = s_cost
        self.budget.charge(s_cost or 0.0)
        if s_cost is None:
            flags.append(Flag(kind="unpriced", where="specialist", detail=f"no price for {self.specialist.entry.model!r}"))
        generalist, g_cost = None, 0.0
        if self.generalist is None:
            flags.append(Flag(kind="generalist_missing_key", detail=f"specialist findings only: set {self.missing_key} "
                              "to add the generalist's report" if self.missing_key else "specialist findings only"))
        else:
            generalist, g_cost = self._generalist(data, spec, context, flags)
        evidence = [f["id"] for f in spec["features"]]
        if generalist is not None:
            flags += check_citations(generalist.report, evidence, self.specialist.taxonomy)
        costs = [s_cost, g_cost]
        return Analysis(id=sha256_bytes(data), image=name, width=image.width, height=image.height, context=context,
                        specialist=SpecialistResult(**spec), generalist=generalist, flags=flags,
                        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), fracdata=__version__,
                        taxonomy_version=self.specialist.taxonomy.version,
                        cost_usd=None if None in costs else round(sum(costs), 6)), image

    def _generalist(self, data: bytes, spec: dict, context: str | None, flags: list):
        from fracdata.analyze.schema import Flag, GeneralistAnswer, GeneralistResult

        g, budget = self.generalist, self.budget
        body, bound = g.body(io.BytesIO(data), spec, context)
        worst = budget.worst_case(bound)  # the input bound at full price + every allowed output token
        if not budget.reserve(worst):
            flags.append(Flag(kind="budget_exhausted", where="generalist",
                              detail=f"not sent: ${budget.spent + budget.reserved:.4f} spent, this request could "
                                     f"cost ${worst:.4f}, --budget-usd {budget.limit}"))
            return None, 0.0
        out = g.ask(body)
        billed = budget.settle(worst, out.usage)
        cost = None if self.g_price is None and not self.g_free else billed
        if cost is None:
            flags.append(Flag(kind="unpriced", where="generalist", detail=f"no price for {g.entry.model!r}"))
        if out.report is None:
            rid = f" (request {out.request_id})" if out.request_id else ""
            flags.append(Flag(kind="generalist_failed", where="generalist",
                              detail=f"{g.entry.name} at {g.entry.base_url}: {out.reason}: {out.detail}{rid}; "
                                     "specialist findings only"))
            return None, cost
        result = GeneralistResult(model=g.entry.model, endpoint=g.entry.base_url, response_model=out.response_model,
                                  request_id=out.request_id, report=GeneralistAnswer(**out.report), usage=out.usage,
                                  cost_usd=cost, latency_s=out.latency_s)
        return result, cost
