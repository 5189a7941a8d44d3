"""Inputs for the review tests: a manifest of small seeded images, GPT labels, a Label Studio export.

The gold scenario (6 images, two annotators and an adjudicator) and its hand-computed kappa
live here so that the server test and the file/unit tests check the same figures.
"""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

from tests.support.buildkit import encode, noise, put, write_jsonl

# Gold scenario: image k -> (ann1, ann2); "unsure" / "nfs" are the flags; None = no annotation.
ANN1, ANN2, ADJ = "ann1@fracdata.test", "ann2@fracdata.test", "adj@fracdata.test"
GOLD = [
    (["dimple_equiaxed"], ["dimple_equiaxed"]),                                    # 0 agree
    (["cleavage_facet", "river_pattern"], ["cleavage_facet"]),                     # 1 differ: adjudicated
    (["striation_ductile", "beach_marks"], ["beach_marks", "striation_ductile"]),  # 2 agree (order is no matter)
    (["ig_facet"], ["ig_facet", "secondary_crack"]),                               # 3 differ: listed
    ("nfs", "nfs"),                                                                # 4 both: not a fracture surface
    ("unsure", ["gas_pore"]),                                                      # 5 unsure: listed
]
ADJUDICATED = {1: ["cleavage_facet", "river_pattern"]}
# Kappa ann1 vs ann2 by hand, over the 4 images both gave usable answers (0-3) and the 7 features
# either used there (dimple_equiaxed, cleavage_facet, river_pattern, ig_facet, striation_ductile,
# beach_marks, secondary_crack): 28 cells, both yes 5, ann1 only 1 (river_pattern), ann2 only 1
# (secondary_crack), both no 21. po = 26/28; p1 = p2 = 6/28; pe = (6/28)^2 + (22/28)^2 = 520/784;
# kappa = (728/784 - 520/784) / (264/784) = 208/264 = 26/33 = 0.7879.
KAPPA = Fraction(26, 33)
# Per feature over those 4 images: identical vectors -> 1; river_pattern [0,1,0,0] vs [0,0,0,0]:
# po 3/4, pe 3/4 * 1 = 3/4, kappa 0; secondary_crack likewise 0.
PER_FEATURE = {"dimple_equiaxed": 1.0, "cleavage_facet": 1.0, "river_pattern": 0.0, "ig_facet": 1.0,
               "striation_ductile": 1.0, "beach_marks": 1.0, "secondary_crack": 0.0}


def make_manifest(folder: Path, n: int, seed: int = 0, doi_prefix: str = "10.5555/review") -> tuple[Path, list[str]]:
    """n images (seeded noise PNGs) with captions, excerpts and sources; ids in manifest order."""
    rows, ids = [], []
    for k in range(n):
        image_id = put(folder / "images" / f"fig{k}.png", encode(noise(seed * 1000 + k, size=(160, 120))))
        ids.append(image_id)
        rows.append({"id": image_id, "image": f"images/fig{k}.png",
                     "source": {"doi": f"{doi_prefix}.{k:03d}", "title": f"Fatigue of alloy {k}", "figure": f"Fig. {k + 1}",
                                "licence": "CC BY 4.0"},
                     "caption": f"Fig. {k + 1}. SEM fractograph {k} of the fracture surface.",
                     "excerpts": [f"As Fig. {k + 1} shows, the surface of specimen {k} ...", "A second excerpt."]})
    return write_jsonl(folder / "manifest.jsonl", rows), ids


def write_labels(path: Path, ids: list[str], features: list[list[str]]) -> Path:
    return write_jsonl(path, [{"id": i, "features": f, "labeler": {"kind": "gpt", "model": "gpt-5.2"}}
                              for i, f in zip(ids, features)])


def answer_result(answer, taxonomy) -> list:
    """The result list the labelling view submits for an answer (features list, 'nfs' or 'unsure')."""
    if answer == "nfs":
        return [_item("flags", ["not_fracture_surface"])]
    if answer == "unsure":
        return [_item("flags", ["unsure"])]
    groups: dict[str, list[str]] = {}
    for f in answer:
        groups.setdefault(taxonomy.by_id[f].group, []).append(f)
    return [_item(g, v) for g, v in groups.items()]


def _item(control: str, values: list[str]) -> dict:
    # what the frontend sends for a Choices control (its own region id and origin included)
    return {"id": f"r-{control}", "from_name": control, "to_name": "image", "type": "choices", "origin": "manual",
            "value": {"choices": list(values)}}


def export_task(task_id: int, data: dict, anns: list[tuple[int, list, dict]]) -> dict:
    """A task as Label Studio's JSON export writes it: annotations with integer completed_by."""
    return {"id": task_id, "data": data, "project": 1, "annotations": [
        {"id": task_id * 100 + k, "completed_by": who, "result": result, "was_cancelled": False,
         "created_at": f"2026-01-01T00:00:{k:02d}Z", "updated_at": f"2026-01-01T00:00:{k:02d}Z", **extra}
        for k, (who, result, extra) in enumerate(anns)], "predictions": [], "drafts": []}


def read_json(path: Path):
    return json.loads(Path(path).read_text())


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]
