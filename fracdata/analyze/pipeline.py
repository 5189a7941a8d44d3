"""One image -> one `Analysis`: specialist, then (when it can) the generalist, then the citation check.

Shared by `fracdata analyze`, its watch mode and `fracdata serve`. The specialist must answer:
its failure is an error naming its endpoint. The generalist may be absent (no key), over budget
or failing: the result is then the specialist's alone, with a flag that says why.
Cost: each call is priced from fracdata/prices.yaml by model name (a local checkpoint or a keyless
local server costs 0); `budget_usd` caps the sum with the labeller's budget (fracdata.llm.Budget):
each generalist request reserves its worst case (fracdata.llm.input_bound + every allowed output token)
before it is sent, and once one does not fit no further generalist request is sent.
Images go through the one gate (fracdata.images.open_image: a damaged file is an ImageReject,
never a crash); an analysis is named by the image id every stage uses, the sha256 of the decoded
pixels (`file_sha256` records the bytes). Decoding is held to a memory budget (`MemoryBudget`):
the full-size image lives only while it is decoded, hashed and read by the specialist; the
generalist and the report get a copy of at most REPORT_SIDE px.
"""

from __future__ import annotations

import hashlib
import threading
from contextlib import contextmanager
from datetime import datetime, timezone

from fracdata.errors import FracdataError

REPORT_SIDE = 1536  # px: the generalist's image (fracdata.label.prompt.Params.max_side) and the report's
DEFAULT_MEMORY = 1_000_000_000  # bytes of image work at once (serve --decode-memory-mb)


class AlreadyDone(Exception):
    """The image's pixel id is one the caller has analysed already (watch mode)."""

    def __init__(self, image_id: str):
        super().__init__(image_id)
        self.id = image_id


class MemoryBudget:
    """A weighted semaphore over bytes: decodes run at once while the sum of their estimated peak
    memory (fracdata.images.Header.work_bytes, from the header) fits `limit`; an image whose own
    estimate is larger runs alone. So image work never holds more than max(limit, the largest
    single image's estimate) at once, whatever the number of concurrent requests."""

    def __init__(self, limit: int = DEFAULT_MEMORY):
        self.limit, self.used, self.peak = limit, 0, 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, nbytes: int):
        n = min(nbytes, self.limit)
        with self._cond:
            while self.used and self.used + n > self.limit:
                self._cond.wait()
            self.used += n
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= n
                self._cond.notify_all()


def file_sha256(source) -> str:
    """sha256 of image bytes, a path or a binary file (read in 1 MB pieces, then rewound)."""
    if isinstance(source, (bytes, bytearray)):
        return hashlib.sha256(source).hexdigest()
    if not hasattr(source, "read"):
        from fracdata.records import sha256_file

        return sha256_file(source)
    h = hashlib.sha256()
    source.seek(0)
    for chunk in iter(lambda: source.read(1 << 20), b""):
        h.update(chunk)
    source.seek(0)
    return h.hexdigest()


def price_for(entry, prices: dict):
    """(USD-per-1M-token prices or None, free?) for an entry: local and keyless servers are free."""
    from fracdata.llm.prices import model_prices

    if entry.kind == "local" or not entry.api_key_env:
        return None, True
    return model_prices(prices, entry.model), False


class Analyzer:
    def __init__(self, specialist, generalist=None, missing_key: str | None = None, prices: dict | None = None,
                 budget_usd: float | None = None, spent_before: float = 0.0, memory: MemoryBudget | None = None,
                 budget_given: bool = True):
        from fracdata.images import Bounds
        from fracdata.llm.budget import Budget
        from fracdata.llm.prices import load_prices

        self.bounds, self.memory = Bounds(), memory or MemoryBudget()
        self.specialist, self.generalist, self.missing_key = specialist, generalist, missing_key
        self.prices = prices or load_prices()
        self.s_price, self.s_free = price_for(specialist.entry, self.prices)
        self.g_price, self.g_free = price_for(generalist.entry, self.prices) if generalist else (None, True)
        # One budget for both calls: the specialist is charged after the fact (it always runs),
        # each generalist request reserves its worst case first.
        self.budget = Budget(budget_usd, None if self.g_free else self.g_price,
                             generalist.max_output_tokens if generalist else 0, spent_before=spent_before)
        if budget_usd is not None and budget_given:  # a default cap on an unpriced model is said at start, not refused
            for who, entry, price, free in (("specialist", specialist.entry, self.s_price, self.s_free),
                                            ("generalist", generalist.entry if generalist else None, self.g_price, self.g_free)):
                if entry is not None and price is None and not free:
                    raise FracdataError(f"fracdata/prices.yaml: no price for {who} model {entry.model!r}; add it "
                                        "(or pass --prices FILE) to use --budget-usd")
        self._lock = threading.Lock()  # one analysis at a time: a local model is not re-entrant

    def analyse(self, source, name: str, context: str | None = None, done=frozenset()):
        """Image bytes, a path or a binary file -> (Analysis, the image at most REPORT_SIDE px).
        Raises ImageReject for an image it cannot read (any damage: the gate), AlreadyDone when
        its pixel id is in `done`, FracdataError when the specialist fails."""
        from fracdata import __version__
        from fracdata.analyze.schema import Analysis, Flag, SpecialistResult, check_citations
        from PIL import Image

        from fracdata.images import ImageReject, inspect, open_image, pixel_id
        from fracdata.llm.prices import cost_usd

        header = inspect(source, self.bounds)  # the header only: what decoding it will cost
        try:
            sha = file_sha256(source)
        except OSError as e:  # gone or unreadable since its header was read
            raise ImageReject("unreadable_image", f"{type(e).__name__}: {e.strerror or e}") from None
        with self.memory.hold(header.work_bytes):
            full = open_image(source, self.bounds)
            image_id = pixel_id(full)
            if image_id in done:
                raise AlreadyDone(image_id)
            with self._lock:
                spec = self.specialist.analyse(full)
            width, height = full.size
            full.thumbnail((REPORT_SIDE, REPORT_SIDE), Image.Resampling.LANCZOS)  # as the labeller's encoder does
            image = full  # now at most REPORT_SIDE px: the full-size pixels are freed
        flags: list[Flag] = []
        rev = spec.pop("review")  # top-level `needs_person` and `review`, not a flag: it is every image's verdict
        s_cost = 0.0 if self.s_free else (cost_usd(spec["usage"], self.s_price) if self.s_price else None)
        spec["cost_usd"] = s_cost
        self.budget.charge(s_cost or 0.0)
        if s_cost is None:
            flags.append(Flag(kind="unpriced", where="specialist", detail=f"no price for {self.specialist.entry.model!r}"))
        generalist, g_cost = None, 0.0
        if self.generalist is None:
            if self.missing_key:  # --generalist none asked for no report: nothing to flag
                flags.append(Flag(kind="generalist_missing_key", detail=f"specialist findings only: set "
                                  f"{self.missing_key} to add the generalist's report"))
        else:
            generalist, g_cost = self._generalist(image, spec, context, flags)
        evidence = [f["id"] for f in spec["features"]]
        if generalist is not None:
            flags += check_citations(generalist.report, evidence, self.specialist.taxonomy)
        costs = [s_cost, g_cost]
        return Analysis(id=image_id, file_sha256=sha, image=name, files=[{"path": name, "file_sha256": sha}],
                        needs_person=rev["needs_person"], review=rev, width=width, height=height,
                        context=context, specialist=SpecialistResult(**spec), generalist=generalist, flags=flags,
                        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), fracdata=__version__,
                        taxonomy_version=self.specialist.taxonomy.version,
                        cost_usd=None if None in costs else round(sum(costs), 6)), image

    def _generalist(self, image, spec: dict, context: str | None, flags: list):
        from fracdata.analyze.schema import Flag, GeneralistAnswer, GeneralistResult

        g, budget = self.generalist, self.budget
        body, bound = g.body(image, spec, context)
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
