"""The gold guard: nothing of the benchmark reaches training.

Over every labelled training candidate (before dedup, so a leak hidden behind a near copy
still counts):
  papers   a training image whose source DOI is a gold image's (normalised: case, a
           https://doi.org/ or doi: prefix) is rejected, reason `gold_paper`: sibling panels and
           other figures of a benchmark paper share its specimen, microscope and authors. A
           paper without a DOI (the miner found none: `source.doi_from` none) is the same
           paper by the split's identity, `records.group_key`: its title, URL or source file.
  parents  a training image cut from the same parent (`source.parent`: the raw image or field)
           as a gold image fails the build: tiles of one micrograph never straddle train and gold.
  copies   a training image within --near-dup-distance phash bits of a gold image under any of
           the 8 rotations/flips (dedup.py) fails the build.
  regions  a training image that shares a region with a gold image (a crop, a tile, a scaled
           crop, either way round; overlap.py) fails the build.
A failure lists every training image, its file:line and the gold image it matches, in one line.
A pair a person judged distinct passes when a waiver names it (waivers.py); the card lists it.
"""

from __future__ import annotations

from fracdata.dataset import dedup
from fracdata.errors import FracdataError
from fracdata.records import group_key


def gold_dois(gold: dict) -> dict[str, str]:
    """{paper identity ('doi:<normalised DOI>', else 'title:...', 'url:...', 'file:...'):
    'gold file:line' of its first gold image}."""
    out: dict[str, str] = {}
    for g in gold.values():
        key = group_key(g.source, None)
        if key and key not in out:
            out[key] = g.where
    return out


def gold_paper(candidate, dois: dict[str, str]) -> str | None:
    """The reject detail when the candidate comes from a gold paper, else None."""
    key = group_key(candidate.source, None)
    if key is None or key not in dois:
        return None
    if key.startswith("doi:"):
        return f"source DOI {key[4:]} is a gold benchmark paper ({dois[key]}); its images stay out of training"
    return f"source paper {key} (no DOI) is a gold benchmark paper ({dois[key]}); its images stay out of training"


def check(train: dict, decoded: dict, gold: dict, gold_decoded: dict, max_distance: int,
          waivers: dict | None = None) -> dict[tuple[str, str], list[str]]:
    """Raise one FracdataError naming every leak that no waiver covers; else return what each waiver
    let through: {(gold id, training id): [the guard's findings for that pair]} (waivers.py).

    train / gold: {id: Candidate / GoldImage}; decoded / gold_decoded: {id: Decoded}.
    """
    waivers = waivers or {}
    used: dict[tuple[str, str], list[str]] = {}

    def waived(gid: str, tid: str, what: str) -> bool:
        if (gid, tid) in waivers:
            used.setdefault((gid, tid), []).append(what)
            return True
        return False

    parents = {}
    for g in gold.values():
        if g.parent:
            parents.setdefault(g.parent, [])
            parents[g.parent].append(g)
    siblings = [(c, g) for c in train.values() for g in parents.get(c.parent, [])
                if not waived(g.id, c.id, f"same parent {c.parent!r}")]
    copies = [m for m in dedup.gold_matches({i: d.hashes for i, d in gold_decoded.items()},
                                            {i: d.hashes for i, d in decoded.items()}, max_distance)
              if not waived(m.kept, m.other, f"copy ({dedup.said(m.transform)}, phash distance {m.distance})")]
    copied = {(m.other, m.kept) for m in copies}
    regions = [(tid, o) for tid, d in decoded.items() for o in d.overlaps if (tid, o.gold) not in copied
               and not waived(o.gold, tid, f"shared region ({o.inliers} matching keypoints, scale {o.scale:g}, "
                                           f"pixel correlation {o.correlation:g}{', mirrored' if o.mirrored else ''})")]
    if not (siblings or copies or regions):
        return used
    parts = []
    if copies:
        parts.append(f"{len(copies)} training image(s) are gold benchmark images or rotated/flipped/re-encoded copies "
                     "of them: " + "; ".join(f"{m.other} ({train[m.other].where}) = gold {m.kept} "
                                             f"({dedup.said(m.transform)}, phash distance {m.distance})" for m in copies))
    if regions:
        parts.append(f"{len(regions)} training image(s) share a region with a gold image (a crop, tile or scaled crop, "
                     "either way round): " + "; ".join(
                         f"{tid} ({train[tid].where}) ~ gold {o.gold} ({gold[o.gold].where}; {o.inliers} matching "
                         f"keypoints, scale {o.scale:g}, pixel correlation {o.correlation:g}{', mirrored' if o.mirrored else ''})"
                         for tid, o in regions))
    if siblings:
        parts.append(f"{len(siblings)} training image(s) were cut from the same parent as a gold image: " + "; ".join(
            f"{c.id} ({c.where}) and gold {g.id} ({g.where}) both from {c.parent!r}" for c, g in siblings))
    raise FracdataError("gold leak: " + "; ".join(parts) + ". Remove them from the training inputs (or, where a "
                        "person judged a pair distinct, waive it: --waivers, docs/build.md)")
