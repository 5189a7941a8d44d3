"""Audit and manual reviews: one reviewer's decision per image -> human LabelRecords (+ audit scores).

One review per image: when several people annotated an image, the earliest submitted annotation
is kept and the others are rejected as `extra_review` (naming the kept reviewer), since an
audit scores one reviewer against GPT and a label file holds one label per image.
  audit   each kept decision is scored against the GPT label exactly as `fracdata audit score`
          scores a filled CSV (label.audit.score_sets): "not a fracture surface" counts as the
          empty set (every GPT feature unconfirmed); "unsure" is skipped (`unsure`) like a
          blank row; images nobody reviewed are skipped as `not_reviewed`. Every decision but
          "unsure" is written as a `labeler.kind: human` label, which the builder lets override
          the GPT label of the same id ("not a fracture surface": features [] and that image_type).
  manual  each kept decision becomes a label of the collection's labels.jsonl; "unsure" and
          "not a fracture surface" are rejects with those reasons (they do not belong in it).
"""

from __future__ import annotations

from collections import Counter, defaultdict

from fracdata.errors import FracdataError
from fracdata.records import Labeler, LabelRecord, Reject

STAGE = "review"
NOT_FRACTURE_TYPE = "not a fracture surface"  # the image_type the GPT labeller's schema uses


def one_per_image(decisions, where: str):
    """({id: kept decision}, extra_review rejects)."""
    by_id = defaultdict(list)
    for d in decisions:
        by_id[d.id].append(d)
    kept, rejects = {}, []
    for image_id, ds in by_id.items():
        ds.sort(key=lambda d: (d.submitted or "", d.annotation or 0))
        kept[image_id] = ds[0]
        for d in ds[1:]:
            rejects.append(Reject(stage=STAGE, file=where, id=image_id, reason="extra_review",
                                  detail=f"annotation {d.annotation} by {d.annotator}: the image was already reviewed "
                                         f"by {ds[0].annotator} (annotation {ds[0].annotation}), which is kept"))
    return kept, rejects


def _label(d, taxonomy) -> LabelRecord:
    return LabelRecord(id=d.id, features=list(d.answer.features),
                       labeler=Labeler(kind="human", annotator=d.annotator, created=d.created,
                                       taxonomy_version=taxonomy.version),
                       image_type=NOT_FRACTURE_TYPE if d.answer.not_fracture else None, rationale=d.answer.notes)


def audit(review, kept: dict, gpt: dict, taxonomy, where: str):
    """(scores as `fracdata audit score` writes them, human labels, unsure rejects)."""
    from fracdata.label.audit import score_sets

    pairs, skipped, labels, rejects = [], Counter(), [], []
    for item in review.items:  # sample order = sorted ids, as the CSV rows
        d = kept.get(item.id)
        if d is None:
            skipped["not_reviewed"] += 1
            continue
        if d.answer.unsure:
            skipped["unsure"] += 1
            rejects.append(Reject(stage=STAGE, file=where, id=item.id, reason="unsure",
                                  detail=f"annotation {d.annotation} by {d.annotator} says unsure: not scored, no label"))
            continue
        if item.id not in gpt:
            raise FracdataError(f"{where}: image {item.id[:12]}... is in the sample but not in the labels file "
                                "(pass --labels with the labels the sample was drawn from)")
        pairs.append((set(gpt[item.id].features), set(d.answer.features)))
        labels.append(_label(d, taxonomy))
    if not pairs:
        raise FracdataError(f"{where}: no reviewed images yet ({sum(skipped.values())} skipped: {dict(skipped)})")
    s = score_sets(pairs, taxonomy)
    s["rows"], s["skipped"] = len(review.items), dict(skipped)
    return s, labels, rejects


def manual(review, kept: dict, taxonomy, where: str):
    """(labels in collection order, rejects, images nobody reviewed)."""
    labels, rejects, missing = [], [], 0
    for item in review.items:
        d = kept.get(item.id)
        if d is None:
            missing += 1
        elif d.answer.unsure or d.answer.not_fracture:
            reason = "unsure" if d.answer.unsure else "not_fractograph"
            rejects.append(Reject(stage=STAGE, file=where, id=item.id, reason=reason,
                                  detail=f"annotation {d.annotation} by {d.annotator}: {d.answer.describe()}; "
                                         "not written to the collection's labels"))
        else:
            labels.append(_label(d, taxonomy))
    return labels, rejects, missing
