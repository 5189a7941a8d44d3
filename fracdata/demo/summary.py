"""What the demo prints from metrics.json: the table, its claims, and teacher against student.

The claims are on fracbench's headline, strict per-image Jaccard ("strict J": a "none" answer on
an image with features scores 0, as a wrong answer does; benchmarks/fracbench/headline.py), so a
model cannot pass them by abstaining; micro precision, the paper's metric, is printed beside it.
"""

from __future__ import annotations

BASE = "tiny-base"
CONFUSED = ("ig_facet", "cleavage_facet")  # fracdata.synth.teacher.CONFUSION (kept light: no numpy import)
HEADLINE = "strict_jaccard"  # fracbench.headline.KEY (fracdata never imports fracbench outside the demo's subprocess)


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def headline(m: dict) -> dict:
    return m["strict"]["jaccard"]


def summarise(metrics: dict) -> list[str]:
    """The short table: the headline strict J, coverage and "none" on images with features beside
    it, micro P (the paper's metric), micro F1 (95% CIs), n."""
    rows = [f"{'model':22s} {'strict J (headline)':>22s} {'coverage':>8s} {'none':>7s} {'micro P (paper)':>22s} "
            f"{'micro F1':>22s}   n"]
    for name, m in metrics["models"].items():
        mi, cov, ab = m["micro"], m["coverage"], m["abstention"]
        rows.append(f"{name:22s} {_ci(headline(m)):>22s} {cov['answered']:>4d}/{cov['n']:<3d} "
                    f"{ab['none_on_featured']:>3d}/{ab['featured']:<3d} {_ci(mi['precision']):>22s} "
                    f"{_ci(mi['f1']):>22s} {m['n']:4d}")
    return rows


def checks(metrics: dict, tuned: str, min_gain: float, min_blank_gain: float) -> list[tuple[bool, str]]:
    """The demo's claims on the headline, each as (holds, sentence with the measured numbers)."""
    j = {k: headline(v) for k, v in metrics["models"].items()}
    out = []
    gain = j[tuned]["value"] - j[BASE]["value"]
    out.append((gain >= min_gain, f"fine-tuned strict J - base strict J = {gain:+.3f} (needs >= {min_gain})"))
    apart = j[tuned]["ci_low"] > j[BASE]["ci_high"]
    out.append((apart, f"95% CIs do not overlap: fine-tuned low {j[tuned]['ci_low']:.3f} > base high "
                       f"{j[BASE]['ci_high']:.3f}"))
    blank = f"{tuned}-blank"
    if blank in j:
        bgain = j[tuned]["value"] - j[blank]["value"]
        out.append((bgain >= min_blank_gain, f"fine-tuned strict J - its blank-image control = {bgain:+.3f} "
                                             f"(needs >= {min_blank_gain})"))
    return out


def paired(metrics: dict, a: str, b: str, metric: str = HEADLINE) -> dict:
    """A - B for one paired metric, whichever order score wrote the pair in."""
    for p in metrics.get("paired", []):
        if {p["a"], p["b"]} == {a, b}:
            d = p["metrics"][metric]
            if p["a"] == a:
                return dict(d)
            return {**d, "diff": -d["diff"], "ci_low": -d["ci_high"], "ci_high": -d["ci_low"]}
    raise KeyError(f"no paired test of {a} and {b}")


def against_teacher(metrics: dict, teacher: str, student: str) -> str:
    """One line: does the student exceed its teacher, on the same gold images?"""
    t, s = metrics["models"][teacher], metrics["models"][student]
    d = paired(metrics, student, teacher)
    verdict = ("exceeds its teacher" if d["ci_low"] > 0 else "falls short of its teacher" if d["ci_high"] < 0
               else "is level with its teacher (the CI of the difference includes 0)")
    return (f"{student} vs {teacher}: strict J {headline(s)['value']:.3f} vs {headline(t)['value']:.3f}, "
            f"micro P {s['micro']['precision']['value']:.3f} vs {t['micro']['precision']['value']:.3f}; "
            f"strict J difference {d['diff']:+.3f} [{d['ci_low']:+.3f}, {d['ci_high']:+.3f}], "
            f"p = {d['p_value']:.4g} (Holm {d['p_holm']:.4g}): the student {verdict}")


def per_feature(metrics: dict, teacher: str, student: str) -> str:
    """Per-feature F1, teacher -> student, over the gold features: where random errors average out."""
    t, s = metrics["models"][teacher]["per_feature"], metrics["models"][student]["per_feature"]
    feats = [f for f, v in t.items() if v["support"] > 0]
    f1 = {f: (t[f]["f1"]["value"], s[f]["f1"]["value"] if f in s else 0.0) for f in feats}
    better = sum(b > a for a, b in f1.values())
    return (f"per-feature F1, {teacher} -> {student}: " + ", ".join(f"{f} {a:.2f} -> {b:.2f}" for f, (a, b) in f1.items())
            + f"; the student is better on {better} of {len(feats)} features")


def confusion(metrics: dict, names: list[str]) -> str:
    """Recall of the confused feature and precision of the feature it is called, per model."""
    a, b = CONFUSED
    parts = []
    for n in names:
        per = metrics["models"][n]["per_feature"]
        rec = per[a]["recall"]["value"] if a in per else 0.0
        prec = per[b]["precision"]["value"] if b in per else 0.0
        parts.append(f"{n} {rec:.2f} / {prec:.2f}")
    return f"{a} recall / {b} precision: " + ", ".join(parts)


def inherits(metrics: dict, student: str, reference: str) -> bool:
    """The student's recall of the confused feature is below the reference's, CIs disjoint."""
    s = metrics["models"][student]["per_feature"].get(CONFUSED[0])
    r = metrics["models"][reference]["per_feature"].get(CONFUSED[0])
    if s is None or r is None:
        return False
    return s["recall"]["ci_high"] < r["recall"]["ci_low"]


def calibration(metrics: dict, model: str) -> str:
    """One line: the model's per-feature probabilities against gold, before and after calibration."""
    c = metrics["models"][model].get("calibration") or {}
    if not c.get("available"):
        return f"calibration of {model}: no probabilities ({c.get('reason', 'not scored')})"

    def fig(b: dict) -> str:
        sm, fl = b["smooth_ece"], b["smooth_ece"]["floor"]
        return (f"smooth ECE {sm['value']:.4f} [{sm['ci_low']:.4f}, {sm['ci_high']:.4f}] (a calibrated model: "
                f"{fl['mean']:.4f}, p {fl['p_value']:.3f}), Brier {_ci4(b['brier'])}")
    raw, cal = c["raw"], c["calibrated"]
    head = f"calibration of {model} on {raw['images']} gold images x {raw['features']} features: uncalibrated {fig(raw)}"
    if cal is None:
        return head + "; no calibration.json"
    n = ((c.get("calibration") or {}).get("fitted_on") or {}).get("val_images", "?")
    return head + f"; calibrated on {n} val images {fig(cal)}"


def _ci4(m: dict) -> str:
    return f"{m['value']:.4f} [{m['ci_low']:.4f}, {m['ci_high']:.4f}]"
