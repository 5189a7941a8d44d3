"""An audit of suspect labels: the images `fracdata probe` rates likeliest to be mislabelled, first.

The suspects file (one record per (image, feature): id, feature, given, probability, score,
likeliest first) is grouped by image in file order, so an image's rank is that of its likeliest
suspect; the first N images become the review's tasks in that order (Label Studio hands tasks
out in import order), each pre-annotated with the labels as given and showing which of them are
under suspicion and why. It is not a random sample: the agreement `review import` scores over it
is the agreement on the likeliest errors, not of the labels at large (a plain `review audit` draws
that). Import also says how many suspects the reviewer confirmed (decided the feature otherwise
than the labels had it): the precision of the suspect ranking on these images.
"""

from __future__ import annotations

import re
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.records import SHA256_RE, json_lines


def read_suspects(path: Path) -> list[dict]:
    """Suspect records in file order; a line that is not one is an error naming it."""
    if not path.is_file():
        raise FracdataError(f"{path}: suspects file not found (write it with `fracdata probe`)")
    out = []
    for lineno, obj, _, why in json_lines(path):
        if obj is None:
            raise FracdataError(f"{path}:{lineno}: not a JSON object ({why})")
        ok = (isinstance(obj.get("id"), str) and re.match(SHA256_RE, obj["id"]) and isinstance(obj.get("feature"), str)
              and isinstance(obj.get("given"), bool) and all(isinstance(obj.get(k), (int, float)) and
                                                             not isinstance(obj.get(k), bool) for k in ("probability", "score")))
        if not ok:
            raise FracdataError(f"{path}:{lineno}: not a suspect record (id, feature, given, probability, score)")
        out.append({**obj, "line": lineno})
    return out


def rank_images(path: Path, labels: dict, n: int, taxonomy) -> tuple[list[tuple[str, str]], dict]:
    """([(image id, what is suspected)] for the first n images, the sample description)."""
    if n < 1:
        raise FracdataError("--n must be at least 1")
    records = read_suspects(path)
    by_image: dict[str, list[dict]] = {}
    for r in records:
        if r["id"] not in labels:
            raise FracdataError(f"{path}:{r['line']}: image {r['id'][:12]}... is not in the labels file: pass --labels "
                                "with the labels the probe checked")
        if r["feature"] not in taxonomy.by_id:
            raise FracdataError(f"{path}:{r['line']}: {r['feature']!r} is not a taxonomy v{taxonomy.version} id")
        if r["given"] != (r["feature"] in labels[r["id"]].features):
            raise FracdataError(f"{path}:{r['line']}: says {r['feature']} is {'given' if r['given'] else 'absent'} for "
                                f"{r['id'][:12]}..., the labels file says otherwise: the labels changed since the probe ran")
        by_image.setdefault(r["id"], []).append(r)
    order = list(by_image)[:n]
    rank = {r["line"]: k for k, r in enumerate(records, 1)}
    out = []
    for i in order:
        parts = [f"{taxonomy.by_id[r['feature']].name} ({r['feature']}): labelled {'present' if r['given'] else 'absent'}, "
                 f"the probe gives it P = {r['probability']:.2f} (suspect #{rank[r['line']]}, score {r['score']:.2f})"
                 for r in by_image[i]]
        out.append((i, "; ".join(parts)))
    sample = {"n": n, "suspects_file": str(path), "suspects": len(records), "images_with_suspects": len(by_image),
              "order": "likeliest error first (not a random sample)"}
    return out, sample


def confirmed(review, kept: dict, folder: Path) -> dict:
    """How many suspects of the reviewed images the reviewer decided otherwise than the labels had them."""
    records = read_suspects(folder / review.suspects)
    items = {it.id for it in review.items}
    checked = conf = 0
    per_feature: dict[str, list[int]] = {}
    for r in records:
        d = kept.get(r["id"])
        if r["id"] not in items or d is None or d.answer.unsure:
            continue
        human = r["feature"] in d.answer.features
        checked += 1
        conf += human != r["given"]
        row = per_feature.setdefault(r["feature"], [0, 0])
        row[0] += 1
        row[1] += human != r["given"]
    return {"checked": checked, "confirmed": conf, "precision": conf / checked if checked else None,
            "per_feature": {f: {"checked": a, "confirmed": b} for f, (a, b) in sorted(per_feature.items())}}
