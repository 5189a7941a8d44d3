"""The headline metric, and abstention made visible (docs/bench.md, "The headline").

Headline: **strict per-image Jaccard**, |P & G| / |P | G| averaged over images, where a failed or
unparsed answer scores 0 and an image whose gold and answer are both "none" scores 1. Under it:
  - "none" on an image whose gold has features scores 0: no better than a wholly wrong answer
    (also 0), and worse than a partly right one (G = {a, b}, P = {a, c}: 1/3);
  - features on an image whose gold is "none" score 0 too, so answering everything is no escape;
  - every image weighs the same, so a model cannot buy a score on the easy ones by skipping the
    hard ones, as it can under micro precision: a model that answers "none" on its 32 wrong
    images of 200 keeps micro precision 1.000 (no false positive left), and under micro F1 it
    trades one false positive and one miss per single-feature image for one miss, and wins.
The paired tests (approximate randomisation, paired bootstrap, Holm) run on it first
(metrics.PAIRED); the paper's micro precision stays in the report, labelled as the paper's.

Abstention counts, per model, beside coverage: "none" answers on images whose gold has features
(`none_on_featured` of `featured`), and features on images whose gold is "none"
(`features_on_none` of `gold_none`).
"""

from __future__ import annotations

KEY = "strict_jaccard"  # the key of its paired test, and metrics.json's "headline"
PATH = ("strict", "jaccard")
NAME = "strict per-image Jaccard"
WHY = ("**Headline: strict per-image Jaccard** (|P ∩ G| / |P ∪ G| per image, averaged; a failed or unparsed "
       "answer scores 0, \"none\" on a \"none\" image 1). Answering \"none\" on an image whose gold has features "
       "scores 0, as a wholly wrong answer does, so abstaining on hard images cannot raise it (micro precision "
       "rewards exactly that: no answer, no false positive). Micro precision stays in the tables below as the "
       "paper's metric.")


def abstention(items, rows: dict) -> dict:
    """Counts of one model's answers against gold: items are fracbench.data.GoldItem, rows {id: row}."""
    featured = [it for it in items if it.features]
    empty = [it for it in items if not it.features]
    return {"featured": len(featured), "none_on_featured": sum(rows[it.id]["status"] == "none" for it in featured),
            "gold_none": len(empty), "features_on_none": sum(bool(rows[it.id]["labels"]) for it in empty)}


def _ci(v: dict) -> str:
    return f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"


def abstention_cell(a: dict) -> str:
    return f"{a['none_on_featured']}/{a['featured']}"


def markdown(metrics: dict, coverage_cell) -> list[str]:
    """The report's first section: the headline per model, abstention beside coverage, its paired tests."""
    lines = ["## Headline", "", WHY, "",
             "| model | n | strict Jaccard | coverage | \"none\" on images with features | features on \"none\" images "
             "| micro precision (the paper's metric) |", "|---|---|---|---|---|---|---|"]
    for model, m in metrics["models"].items():
        a = m["abstention"]
        lines.append(f"| {model} | {m['n']} | {_ci(m['strict']['jaccard'])} | {coverage_cell(m['coverage'])} | "
                     f"{abstention_cell(a)} | {a['features_on_none']}/{a['gold_none']} | {_ci(m['micro']['precision'])} |")
    seen = {n: pm["identity"].get("inputs") for n, pm in metrics["provenance"]["models"].items()
            if pm.get("identity", {}).get("kind") == "labels"}
    if seen:  # a teacher's row measures the labels the student learned from only if it saw the same inputs
        lines += ["", "What each labels row's labeller saw (`labeler.inputs`; `fracdata label` labels the training images "
                  "from image + caption + excerpts):", ""]
        lines += [f"- {n}: " + (", ".join(f"{k} on {v} images" for k, v in sorted(i.items())) if i else "not recorded")
                  for n, i in seen.items()]
    tests = [(p, p["metrics"][KEY]) for p in metrics["paired"] if KEY in p["metrics"]]
    if tests:
        lines += ["", "Paired tests on the headline (A - B on the same images; Holm over all tests of this report):", "",
                  "| A | B | strict Jaccard difference [95% CI] | p | p (Holm) |", "|---|---|---|---|---|"]
        for p, v in tests:
            lines.append(f"| {p['a']} | {p['b']} | {v['diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] | "
                         f"{v['p_value']:.4f} | {v['p_holm']:.4f} |")
    return lines + [""]


def draw_intervals(ax, x, vals: list[dict], capsize: float = 3) -> None:
    """Draw each percentile interval as it is, [ci_low, ci_high], even where the point estimate lies
    outside it (it can: the point uses all images, each resample its own union of features), so a
    bar's error bar is never a negative length. matplotlib's `yerr` is relative to the bar top."""
    import numpy as np

    lo = np.array([v["ci_low"] for v in vals], dtype=float)
    hi = np.array([v["ci_high"] for v in vals], dtype=float)
    ax.errorbar(x, (lo + hi) / 2, yerr=np.abs(hi - lo) / 2, fmt="none", ecolor="black", elinewidth=1, capsize=capsize)
