"""Per-feature probabilities and the "needs a person" decision (pure functions, no model).

Each taxonomy feature gets the specialist's probability that the image shows it: its score p_f
(fracdata/inference/feature_probs.py) mapped by the checkpoint's calibration.json
(fracdata/inference/calibration.py), or p_f itself when the checkpoint has none (then
`probability_kind` is "uncalibrated"). With the user's threshold t (`--review-threshold`,
0.5 < t <= 1), a feature is
    present  when p >= t,    absent  when p <= 1 - t,    review  otherwise,
so every decision the pipeline takes alone is right with probability >= t (when the
probabilities are calibrated). An image needs a person when any feature is `review`, when the
probabilities are uncalibrated (nothing vouches for them), or when there are none (an endpoint
specialist): e.g. t = 0.9 and river_pattern 0.62 -> review -> needs_person.
"""

from __future__ import annotations

DEFAULT_THRESHOLD = 0.9


def check_threshold(t: float) -> float:
    from fracdata.errors import FracdataError

    if not 0.5 < t <= 1.0:
        raise FracdataError(f"--review-threshold {t}: must be above 0.5 and at most 1 (the probability a decision "
                            "taken without a person must reach; 0.9 = right 9 times in 10)")
    return t


def decision(p: float, t: float) -> str:
    return "present" if p >= t else "absent" if p <= round(1 - t, 12) else "review"  # 1 - 0.9 = 0.0999...98


def feature_probabilities(logprobs: dict[str, float], calibrated: dict[str, float] | None, listed: list[str],
                          taxonomy, t: float) -> list[dict]:
    """FeatureProbability fields for every taxonomy feature, in taxonomy order."""
    import math

    named = set(listed)
    out = []
    for f in taxonomy.ids:
        score = float(f"{math.exp(min(logprobs[f], 0.0)):.6g}")  # 6 significant digits: 3.2e-09 stays 3.2e-09
        p = calibrated[f] if calibrated is not None else score
        out.append({"id": f, "name": taxonomy.by_id[f].name, "probability": p, "score": score,
                    "listed": f in named, "decision": decision(p, t)})
    return out


def review(probs: list[dict] | None, kind: str, t: float) -> dict:
    """The Analysis's `review` block: {needs_person, threshold, features, reason}."""
    if probs is None:
        return {"needs_person": True, "threshold": t, "features": [],
                "reason": "the specialist gives no per-feature probabilities (an endpoint): nothing vouches for its answer"}
    unsure = [x for x in probs if x["decision"] == "review"]
    parts = []
    if unsure:
        parts.append(f"{len(unsure)} feature(s) between {1 - t:.2f} and {t:.2f}: "
                     + ", ".join(f"{x['id']} {x['probability']:.2f}" for x in unsure))
    if kind == "uncalibrated":
        parts.append("the probabilities are uncalibrated (no calibration.json beside the checkpoint: run fracdata calibrate)")
    return {"needs_person": bool(parts), "threshold": t, "features": [x["id"] for x in unsure],
            "reason": "; ".join(parts) or f"every feature's probability is >= {t:.2f} or <= {1 - t:.2f}"}
