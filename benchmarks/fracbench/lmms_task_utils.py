"""lmms-eval functions of the exported fracbench task: copied verbatim as `utils.py` by
`fracbench export --format lmms-eval`, beside verbatim copies of the code fracbench scores with.

Standalone on purpose: lmms-eval users have neither fracdata nor fracbench, so nothing here imports
them. The answer parser (fracdata/answer.py), the taxonomy (fracdata/taxonomy.py and the data of
fracdata/taxonomy.yaml) and the metrics (fracbench/metrics.py, with fracdata/agreement.py) are the
exported files `fracdata_answer.py`, `fracdata_taxonomy.py`, `taxonomy.json`, `fracbench_metrics.py`
and `fracdata_agreement.py`, loaded from this file's folder; so an answer is parsed, and a set of answers scored, by the same code as in fracbench,
and the scores are fracbench's point estimates (its CIs come from `fracbench score`).

lmms-eval calls doc_to_visual / doc_to_text per gold image, process_results per answer, and each
metric's aggregation once over all answers (fractography.yaml names them).
"""

from __future__ import annotations

import importlib
import sys
from functools import lru_cache
from pathlib import Path

HERE = Path(__file__).resolve().parent
# fracbench's coverage: a parsed answer (features or "none") is answered; no text is failed.
COVERAGE = {"ok": "answered", "none": "answered", "failed": "failed", "empty": "failed", "unparsed": "unparsed"}
METRICS = ("micro_precision", "micro_recall", "micro_f1", "macro_precision", "macro_recall", "macro_f1",
           "exact_match", "jaccard", "strict_micro_precision", "strict_micro_f1", "coverage")


def _load(name: str):
    """A sibling module: lmms-eval imports this file by path, without its folder on sys.path, and the
    copies import each other by name (`from fracdata_agreement import indicator`)."""
    if str(HERE) not in sys.path:
        sys.path.insert(0, str(HERE))
    return importlib.import_module(name)


@lru_cache(maxsize=1)
def taxonomy():
    import json

    return _load("fracdata_taxonomy").Taxonomy(json.loads((HERE / "taxonomy.json").read_text(encoding="utf-8")), "taxonomy.json")


def doc_to_visual(doc):
    return [doc["image"].convert("RGB")]


def doc_to_text(doc, lmms_eval_specific_kwargs=None):
    kw = lmms_eval_specific_kwargs or {}
    return f"{kw.get('pre_prompt', '')}{doc['question']}{kw.get('post_prompt', '')}"


def parse(text: str | None) -> tuple[list[str], str]:
    """(taxonomy ids, status) exactly as fracbench parses an answer."""
    p = _load("fracdata_answer").parse_answer(text, taxonomy())
    return p.labels, p.status


def process_results(doc, results):
    labels, status = parse(results[0] if results else None)
    item = {"id": doc["id"], "gold": list(doc["features"]), "pred": labels, "status": status}
    return {m: item for m in METRICS}


def score(items) -> dict:
    """fracbench's point estimates over all items (one per gold image)."""
    import numpy as np

    metrics = _load("fracbench_metrics")
    features = taxonomy().ids
    gold = metrics.indicator([it["gold"] for it in items], features)
    pred = metrics.indicator([it["pred"] for it in items], features)
    miss = [COVERAGE[it["status"]] != "answered" for it in items]
    m, _ = metrics.score(gold, pred, features, np.ones((1, len(items))), miss)
    out = {f"{avg}_{k}": m[avg][k]["value"] for avg in ("micro", "macro") for k in ("precision", "recall", "f1")}
    out.update(exact_match=m["exact_match"]["value"], jaccard=m["jaccard"]["value"],
               strict_micro_precision=m["strict"]["micro"]["precision"]["value"],
               strict_micro_f1=m["strict"]["micro"]["f1"]["value"],
               coverage=sum(not x for x in miss) / len(items))
    return out


def micro_precision(items):
    return score(items)["micro_precision"]


def micro_recall(items):
    return score(items)["micro_recall"]


def micro_f1(items):
    return score(items)["micro_f1"]


def macro_precision(items):
    return score(items)["macro_precision"]


def macro_recall(items):
    return score(items)["macro_recall"]


def macro_f1(items):
    return score(items)["macro_f1"]


def exact_match(items):
    return score(items)["exact_match"]


def jaccard(items):
    return score(items)["jaccard"]


def strict_micro_precision(items):
    return score(items)["strict_micro_precision"]


def strict_micro_f1(items):
    return score(items)["strict_micro_f1"]


def coverage(items):
    """The share of answers the parser could read (fracbench's coverage: answered / n)."""
    return score(items)["coverage"]
