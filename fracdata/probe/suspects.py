"""Suspect labels by confident learning, one binary task per feature.

Method: Northcutt, Jiang and Chuang, "Confident Learning: Estimating Uncertainty in Dataset
Labels", JAIR 70 (2021) 1373-1411, the off-diagonals of the confident joint. cleanlab implements
it but is AGPL-3.0, which an Apache-2.0 package cannot take; these are the few lines it needs.

For one feature, with given labels g_i in {0, 1} and out-of-fold probabilities p_i = P(1 | x_i):
  self-confidence of class c:   s_c(i) = p_i for c = 1, 1 - p_i for c = 0
  per-class threshold:          t_c = mean of s_c(i) over the images given class c
  confident class:              the classes c with s_c(i) >= t_c; if both, the larger s_c(i); if none,
                                the image is not counted (the model is not confident about it)
  suspect:                      the confident class differs from the given label
e.g. 100 images given 1 with mean p 0.8 -> t_1 = 0.8; 900 given 0 with mean 1 - p of 0.9 ->
t_0 = 0.9. An image given 0 with p = 0.85: s_1 = 0.85 >= 0.8 and s_0 = 0.15 < 0.9 -> confident
class 1 -> suspect. An image given 1 with p = 0.5: s_1 = 0.5 < 0.8, s_0 = 0.5 < 0.9 -> not counted.
Per-class thresholds are what make it work on rare features: a fixed 0.5 would flag no positive
of a feature the model never rates above 0.3, however wrong.

Ranking: score = 1 - s_g(i), the probe's probability that the given label is wrong (for a binary
task the normalised margin s_other - s_given = 1 - 2 s_given orders the same way). Suspects of
all features are ranked together by it, highest first; ties by id and feature.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Suspect:
    id: str
    feature: str
    given: bool  # the label under suspicion: True = the labels say the image shows the feature
    probability: float  # the probe's out-of-fold P(feature | image)
    score: float  # 1 - self-confidence of the given label (higher = likelier wrong)

    def record(self) -> dict:
        return {"id": self.id, "feature": self.feature, "given": self.given,
                "probability": round(self.probability, 6), "score": round(self.score, 6)}


def thresholds(given, p) -> tuple[float | None, float | None]:
    """(t_0, t_1): mean self-confidence of the images given each class (None: no image has it)."""
    import numpy as np

    given, p = np.asarray(given, bool), np.asarray(p, float)
    t1 = float(p[given].mean()) if given.any() else None
    t0 = float((1 - p[~given]).mean()) if (~given).any() else None
    return t0, t1


def confident_class(p, t0: float | None, t1: float | None):
    """Per image: 1, 0, or -1 (not confidently either class), by the rule in the module doc."""
    import numpy as np

    p = np.asarray(p, float)
    ok1 = p >= t1 if t1 is not None else np.zeros(len(p), bool)
    ok0 = (1 - p) >= t0 if t0 is not None else np.zeros(len(p), bool)
    out = np.full(len(p), -1)
    out[ok0] = 0
    out[ok1] = 1
    both = ok0 & ok1
    out[both] = np.where(p[both] >= 0.5, 1, 0)  # both confident: the larger self-confidence
    return out


def find_suspects(ids: list[str], features: list[str], Y, P) -> tuple[list[Suspect], dict]:
    """(suspects ranked by score, per-feature summary {feature: {t0, t1, given, flagged_0, flagged_1}}).

    Y: (images, features) given 0/1; P: out-of-fold probabilities, NaN columns = not probed.
    """
    import numpy as np

    out, summary = [], {}
    for j, f in enumerate(features):
        p = P[:, j]
        if np.isnan(p).any():
            continue
        given = Y[:, j].astype(bool)
        t0, t1 = thresholds(given, p)
        conf = confident_class(p, t0, t1)
        flag = (conf >= 0) & (conf != given.astype(int))
        for i in np.flatnonzero(flag):
            s_given = p[i] if given[i] else 1 - p[i]
            out.append(Suspect(ids[i], f, bool(given[i]), float(p[i]), float(1 - s_given)))
        summary[f] = {"t0": t0, "t1": t1, "given": int(given.sum()), "images": len(p),
                      "flagged_given_1": int((flag & given).sum()), "flagged_given_0": int((flag & ~given).sum())}
    out.sort(key=lambda s: (-s.score, s.id, s.feature))
    return out, summary

