"""Score a `fracdata mine` output against the ground truth of `fracdata synth --papers` (truth.jsonl).

Per paper: the DOI (right, none when the paper states none, or wrong: another paper's or a
reference's) and the licence, from what the parser read (`articles`: {truth file: (doi, licence)}).
Per figure: a figure is expected when it is a fractograph of a paper whose licence is allowed;
it is mined when at least one manifest record names it (source file + figure label). Per panel:
each record is located in the figure's true image(s) by normalised cross-correlation (OpenCV,
already a core dependency) and counts for the true panel its box overlaps most (IoU >= 0.7,
correlation >= 0.8); a record that matches no panel, a panel already matched or a figure that is
not expected is a false positive. Recall = found / expected, precision = right / mined.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np

from fracdata.licence import allowed

IOU_MIN, NCC_MIN = 0.7, 0.8
_MARK_RE = re.compile(r"\s\(?a[),]")  # where a caption's panel part starts: "...: (a) dimples; (b) ..."


def iou(a, b) -> float:
    ix = max(0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def _gray(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        return np.asarray(im.convert("L"), dtype=np.float32)


def locate(record: np.ndarray, image: np.ndarray) -> tuple[float, tuple[int, int, int, int]] | None:
    """(correlation, box) of the record's best place in the image, or None when it cannot fit."""
    import cv2

    h, w = record.shape
    if h > image.shape[0] or w > image.shape[1]:
        return None
    if record.std() < 1e-3:  # a flat crop correlates with nothing
        return 0.0, (0, 0, w, h)
    res = cv2.matchTemplate(image, record, cv2.TM_CCOEFF_NORMED)
    _, best, _, (x, y) = cv2.minMaxLoc(res)
    return float(best), (x, y, x + w, y + h)


def lead(caption: str) -> str:
    """The part of a caption every panel keeps: up to its first panel mark."""
    m = _MARK_RE.search(caption)
    return caption[:m.start()].strip() if m else caption.strip()


def expected_captions(caption: str, panel: dict) -> set[str]:
    """What a panel's caption may rightly be: the figure's caption, or its own part of it when
    the caption marks the panels, each alone or followed by the panel's printed title or
    sub-caption ("(b) HIP")."""
    from fracdata.mine.panels import panel_captions

    letter, title = panel["letter"], panel["title"]
    bases = {caption} | ({panel_captions(caption)[letter]} if letter in panel_captions(caption) else set())
    extras = {""} | ({f" {title}"} if title else set()) | ({f" ({letter}) {title}" if title else f" ({letter})"}
                                                            if letter else set())
    return {b + e for b in bases for e in extras}


def _ratio(num: int, den: int) -> float | None:
    return num / den if den else None


def score(truth_file: Path, mined: Path, articles: dict[str, tuple[str | None, str | None]]) -> dict:
    """Recall and precision per paper (DOI, licence), figure and panel; see the module doc."""
    root = truth_file.parent
    truths = [json.loads(line) for line in truth_file.read_text().splitlines() if line.strip()]
    records = [json.loads(line) for line in (mined / "manifest.jsonl").read_text().splitlines() if line.strip()]

    def paper_of(file: str):
        return next((t for t in truths if file == t["file"] or file.endswith("/" + t["file"])), None)

    out = {"papers": len(truths), "doi": Counter(), "licence": Counter(), "figure": Counter(), "panel": Counter(),
           "caption": Counter(), "letter": Counter(), "by_layout": {},
           "letter_errors": []}
    for t in truths:
        doi, licence = articles.get(t["file"], (None, None))
        refs = t.get("placeholder_reference")
        kind = ("right" if doi == t["doi"] else "wrong" if doi else "missed") if t["doi"] else ("right" if doi is None else "wrong")
        out["doi"][kind] += 1
        out["doi"]["stated"] += t["doi"] is not None
        out["doi"]["given"] += doi is not None
        out["doi"]["right_given"] += doi is not None and doi == t["doi"]
        out["doi"]["placeholder_taken"] += bool(refs) and doi == "10.1109/access.2024.000000"
        out["licence"]["right" if licence == t["licence"] else "wrong"] += 1

    by_fig: dict[tuple[str, str], list[dict]] = {}
    for r in records:
        t = paper_of(r["source"].get("file") or "")
        key = (t["paper"] if t else "?", r["source"].get("figure") or "?")
        by_fig.setdefault(key, []).append(r)
    cache: dict[str, np.ndarray] = {}
    for t in truths:
        for fig in t["figures"]:
            expected = fig["fracture"] and allowed(t["licence"])
            recs = by_fig.pop((t["paper"], fig["label"]), [])
            layout = out["by_layout"].setdefault(_layout(fig), Counter())
            n_panels = sum(len(im["panels"]) for im in fig["images"])
            if expected:
                out["figure"]["expected"] += 1
                out["panel"]["expected"] += n_panels
                layout["figures"] += 1
                layout["panels"] += n_panels
            if recs:
                out["figure"]["mined"] += 1
                out["figure"]["right"] += expected
            out["panel"]["mined"] += len(recs)
            if not expected:
                continue
            matched = set()
            for r in recs:
                rec = _gray(mined / r["image"])
                best = None
                for i, im in enumerate(fig["images"]):
                    if im["file"] not in cache:
                        cache[im["file"]] = _gray(root / im["file"])
                    found = locate(rec, cache[im["file"]])
                    if found is None or found[0] < NCC_MIN:
                        continue
                    for j, p in enumerate(im["panels"]):
                        overlap = iou(found[1], p["box"])
                        if overlap >= IOU_MIN and (best is None or overlap > best[0]):
                            best = (overlap, (i, j), p)
                if best is None or best[1] in matched:
                    continue
                matched.add(best[1])
                out["panel"]["right"] += 1
                cap = r.get("caption", "")
                out["caption"]["kept"] += cap.startswith(lead(fig["caption"]))
                out["caption"]["exact"] += cap in expected_captions(fig["caption"], best[2])
                if best[2]["letter"]:
                    right = r["source"].get("panel") == best[2]["letter"]
                    out["letter"]["right" if right else "wrong"] += 1
                    if not right:
                        out["letter_errors"].append(f"{t['file']} {fig['label']}: {r['source'].get('panel')} for "
                                                    f"{best[2]['letter']} ({_layout(fig)}, letters {fig['letters']})")
            layout["panels_right"] += len(matched)
            layout["figures_complete"] += len(matched) == n_panels and len(recs) == n_panels
            out["figure"]["complete"] += len(matched) == n_panels and len(recs) == n_panels
    for recs in by_fig.values():  # records naming no true figure (a wrong label, a stray image)
        out["figure"]["mined"] += 1
        out["panel"]["mined"] += len(recs)
    f, p, d = out["figure"], out["panel"], out["doi"]
    out["rates"] = {
        "figure_recall": _ratio(f["right"], f["expected"]), "figure_precision": _ratio(f["right"], f["mined"]),
        "panel_recall": _ratio(p["right"], p["expected"]), "panel_precision": _ratio(p["right"], p["mined"]),
        "doi_recall": _ratio(d["right_given"], d["stated"]), "doi_precision": _ratio(d["right_given"], d["given"]),
        "doi_right": _ratio(d["right"], out["papers"]), "licence_right": _ratio(out["licence"]["right"], out["papers"]),
        "caption_kept": _ratio(out["caption"]["kept"], p["right"]),
        "caption_exact": _ratio(out["caption"]["exact"], p["right"]),
        "letter_right": _ratio(out["letter"]["right"], out["letter"]["right"] + out["letter"]["wrong"]),
    }
    return out


def _layout(fig: dict) -> str:
    """A row of the table: how the figure is laid out."""
    if fig["layout"] in ("single", "plot"):
        return {"single": "one fractograph", "plot": "plot (not a fractograph)"}[fig["layout"]]
    if fig["layout"] == "grid":
        return "sheet, panel titles" if fig["titles"] else f"sheet, {fig['gutter']} gutters"
    how = "titles" if fig["titles"] else {"subcaptions": "sub-captions", "text": "letters on top", "none": "bare"}[fig["letters"]]
    return f"image per panel, {how}"
