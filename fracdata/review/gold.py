"""Gold review: two or more independent annotators -> consensus gold JSONL, Cohen's kappa, the rest listed.

Consensus rule, per image (the adjudicator is the person named by --adjudicator, usually
after the consensus discussion; their annotation is a decision, not a vote):
  1. agreement: at least --min-annotators (2) annotators, none unsure, all chose the same
     feature set (or all said "not a fracture surface") -> that set;
  2. else the adjudicator's annotation, if there is one and it is not "unsure";
  3. else the image is left out of the gold file and listed in <out>.disagreements.jsonl with
     a reason: not_annotated, too_few_annotators, unsure, or disagreement (and the features
     the annotators differ on).
An image whose consensus is "not a fracture surface" is left out and listed as such.
`annotators` in each gold record holds every annotator's (not the adjudicator's) usable set.

Kappa, for every pair of annotators, over the images both labelled with a usable answer (not
unsure, not "not a fracture surface"): per feature, Cohen's kappa of the two present/absent
vectors; overall, the kappa of all (image, feature) cells pooled over the features either of
them used on those images - fracbench's annotator_agreement, the same definition `fracbench
report` applies to a gold file. With more than two annotators the overall figure is the mean
over pairs (Light's kappa). Figures are over all images both annotated, disagreements
included; fracbench on the written gold file sees only the images that reached consensus.
"""

from __future__ import annotations

import os
from collections import defaultdict
from pathlib import Path
from types import SimpleNamespace

from fracdata.errors import FracdataError
from fracdata.records import GoldRecord

# A reference, not the study's figure: "independent labelling by two materials scientists ... Cohen's
# kappa of 0.89" is in the review page's *simulated* author rebuttal, not in the paper (docs/study.md).
REFERENCE_KAPPA = 0.89
REFERENCE_SOURCE = "the review page's simulated author rebuttal, not the paper (docs/study.md)"


def consensus(review, decisions, adjudicator: str | None, min_annotators: int, image_path):
    """(gold records, listed images) from the decisions; image_path(item) = the gold file's image path."""
    by_id = defaultdict(dict)
    for d in decisions:
        by_id[d.id][d.annotator] = d.answer
    gold, listed = [], []
    for item in review.items:
        answers = by_id.get(item.id, {})
        votes = {n: a for n, a in answers.items() if n != adjudicator}
        judge = answers.get(adjudicator) if adjudicator else None
        sets = {(a.features, a.not_fracture) for a in votes.values()}
        outcome, note = None, None
        if len(votes) >= min_annotators and not any(a.unsure for a in votes.values()) and len(sets) == 1:
            outcome = next(iter(votes.values()))
        elif judge is not None and not judge.unsure:
            outcome, note = judge, f"adjudicated by {adjudicator}"
        usable = {n: list(a.features) for n, a in sorted(votes.items()) if a.usable}
        described = {n: a.describe() for n, a in sorted(answers.items())}
        if outcome is None or outcome.not_fracture:
            if outcome is not None:
                reason = "not_fractograph"
            elif not votes:
                reason = "not_annotated"
            elif any(a.unsure for a in votes.values()):
                reason = "unsure"
            elif len(votes) < min_annotators:
                reason = "too_few_annotators"
            else:
                reason = "disagreement"
            chosen = [set(a.features) for a in votes.values() if a.usable]
            differ = sorted(set().union(*chosen) - set.intersection(*chosen)) if len(chosen) > 1 else []
            listed.append({"id": item.id, "image": image_path(item), "reason": reason, "annotators": described,
                           "differ": differ})
            continue
        gold.append(GoldRecord(id=item.id, image=image_path(item), features=list(outcome.features),
                               annotators=usable or None, note=note, source=item.source,
                               caption=item.caption or None, excerpts=list(item.excerpts) or None))
    return gold, listed


def kappa(decisions, adjudicator: str | None, taxonomy) -> dict:
    from fracdata.agreement import annotator_agreement, cohen_kappa

    by_id = defaultdict(dict)
    for d in decisions:
        if d.annotator != adjudicator:
            by_id[d.id][d.annotator] = d.answer
    names = sorted({n for a in by_id.values() for n in a})
    # annotator_agreement pairs up the annotators of each item: give it only the usable answers.
    items = [SimpleNamespace(annotators={n: list(a.features) for n, a in ans.items() if a.usable})
             for _, ans in sorted(by_id.items())]
    pooled = {(p["a"], p["b"]): p for p in annotator_agreement(items, taxonomy.ids)}
    pairs = []
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            both = [ans for ans in by_id.values() if a in ans and b in ans]
            excluded = {"unsure": sum(ans[a].unsure or ans[b].unsure for ans in both),
                        "not_fracture_surface": sum(not (ans[a].unsure or ans[b].unsure)
                                                    and (ans[a].not_fracture or ans[b].not_fracture) for ans in both)}
            ok = [(set(ans[a].features), set(ans[b].features)) for ans in both if ans[a].usable and ans[b].usable]
            used = taxonomy.sort(set().union(*[x | y for x, y in ok])) if ok else []
            per_feature = {}
            for fid in used:
                xa = [int(fid in x) for x, _ in ok]
                xb = [int(fid in y) for _, y in ok]
                k = cohen_kappa(xa, xb)
                per_feature[fid] = {"a": sum(xa), "b": sum(xb), "both": sum(p & q for p, q in zip(xa, xb)),
                                    "agreement": sum(p == q for p, q in zip(xa, xb)) / len(ok),
                                    "kappa": None if k is None else float(k)}
            p = pooled.get((a, b), {})
            pairs.append({"a": a, "b": b, "images": len(ok), "features": len(used), "excluded": excluded,
                          "kappa": p.get("kappa"), "exact_agreement": p.get("exact_agreement"),
                          "per_feature": per_feature})
    ks = [p["kappa"] for p in pairs if p["kappa"] is not None]
    return {"annotators": names, "pairs": pairs, "overall": sum(ks) / len(ks) if ks else None,
            "reference_kappa": REFERENCE_KAPPA, "reference_source": REFERENCE_SOURCE}


def image_path_for(folder: Path, out: Path):
    """Gold image paths are relative to the gold file and may not leave its folder (the builder's rule)."""
    root = out.parent.resolve()

    def path(item) -> str:
        image = (folder / item.image).resolve()
        if not image.is_relative_to(root):
            raise FracdataError(f"{out}: its images ({image.parent}) would be outside its folder {root}; "
                                "write the gold file in the review folder (the default) or above it")
        return os.path.relpath(image, root)

    return path


def print_kappa(k: dict) -> None:
    fmt = lambda x: "n/a" if x is None else f"{x:.3f}"
    for p in k["pairs"]:
        ex = ", ".join(f"{n} {r}" for r, n in p["excluded"].items() if n)
        print(f"Cohen's kappa {p['a']} vs {p['b']}: {fmt(p['kappa'])} over {p['images']} images x "
              f"{p['features']} features{f' ({ex} excluded)' if ex else ''}; exact feature set agreement "
              f"{fmt(p['exact_agreement'])}; reference: {REFERENCE_KAPPA} from {REFERENCE_SOURCE}")
        print(f"  {'feature':24s} {'a':>3s} {'b':>3s} {'both':>4s} {'agree':>6s} {'kappa':>6s}")
        for fid, r in p["per_feature"].items():
            print(f"  {fid:24s} {r['a']:3d} {r['b']:3d} {r['both']:4d} {r['agreement']:6.3f} {fmt(r['kappa']):>6s}")
    if len(k["pairs"]) > 1:
        print(f"overall (mean over {len(k['pairs'])} pairs): {fmt(k['overall'])}")
