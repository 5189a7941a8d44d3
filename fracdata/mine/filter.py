"""Is this figure a fracture surface? A score from caption and excerpt evidence.

Each evidence term counts once, with its weight, in the text where it matches best:
full weight in the caption (it describes this figure), half weight in a citing excerpt (a
paragraph may discuss several figures). The default threshold 3.0 keeps a caption that says
"fractograph" (3) or "SEM ... dimples" (1 + 2), and refuses one that only says "SEM image" (1)
or a fracture *test* setup ("fracture toughness specimen": 1 - 2 = -1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

DEFAULT_MIN_SCORE = 3.0
EXCERPT_WEIGHT = 0.5

# (name, weight, pattern). Strong terms name the figure type; features name what only a
# fracture surface shows; weak terms are common in fractography and elsewhere; negative
# terms name figure types that are not images of a fracture surface.
TERMS: list[tuple[str, float, str]] = [
    ("fracture surface", 3, r"fracture[ds]?\s+surfaces?"),
    ("fractograph", 3, r"fractograph\w*"),
    ("fracture morphology", 3, r"fracture\s+(?:morpholog\w+|appearance|topograph\w+)"),
    ("dimple", 2, r"dimpl\w*"),
    ("cleavage", 2, r"(?:quasi-?)?cleavage"),
    ("striation", 2, r"striations?"),
    ("beach mark", 2, r"beach\s*marks?"),
    ("river pattern", 2, r"river\s+(?:patterns?|marks?|lines?)"),
    ("intergranular", 2, r"intergranular"),
    ("transgranular", 2, r"transgranular"),
    ("crack origin", 2, r"crack\s+(?:origins?|initiation\s+sites?)|initiation\s+sites?"),
    ("ratchet mark", 2, r"ratchet\s+marks?"),
    ("shear lip", 2, r"shear\s+lips?"),
    ("SEM", 1, r"SEM|scanning\s+electron"),
    ("fracture", 1, r"fractur\w*"),
    ("fatigue", 1, r"fatigue"),
    ("ductile/brittle", 1, r"ductile|brittle"),
    ("micrograph", 1, r"micrographs?"),
    ("schematic", -3, r"schematic\w*|illustration|sketch"),
    ("plot", -2, r"stress[-\s]strain|curves?|diagram|histogram|XRD|diffraction\s+patterns?"),
    ("test setup", -2, r"specimen\s+geometry|test\s+(?:set-?up|rig|fixture)|toughness\s+specimen"),
    ("microstructure", -1, r"EBSD|etched|microstructures?\b"),
]
_COMPILED = [(name, w, re.compile(rf"(?<![\w-])(?:{pat})(?![\w-])", re.IGNORECASE if name != "SEM" else 0))
             for name, w, pat in TERMS]


@dataclass
class Verdict:
    score: float
    keep: bool
    evidence: list[dict] = field(default_factory=list)  # [{term, weight, where, text}]

    def describe(self) -> str:
        got = ", ".join(f"{e['term']} ({e['where']}) {e['weight']:+g}" for e in self.evidence) or "no evidence"
        return f"score {self.score:g}: {got}"


def score_figure(caption: str, excerpts: list[str], min_score: float = DEFAULT_MIN_SCORE) -> Verdict:
    """Score one figure; keep it when score >= min_score."""
    evidence = []
    for name, weight, rx in _COMPILED:
        m = rx.search(caption or "")
        if m:
            evidence.append({"term": name, "weight": float(weight), "where": "caption", "text": m.group(0)})
            continue
        for i, ex in enumerate(excerpts):
            m = rx.search(ex)
            if m:
                evidence.append({"term": name, "weight": weight * EXCERPT_WEIGHT,
                                 "where": f"excerpt {i + 1}", "text": m.group(0)})
                break
    score = round(sum(e["weight"] for e in evidence), 2)
    return Verdict(score=score, keep=score >= min_score, evidence=evidence)
