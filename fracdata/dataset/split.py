"""Train/validation split grouped by source paper, rare features on both sides, seeded.

Crops of one paper share a microscope, a material and often a specimen: if they straddled the
split, validation would measure memory of the paper, not of the feature. So the unit of the
split is the group (`group_key`), never the image; tiles cut from one parent (`source.parent`)
are one group with every paper they appear in (`groups`).

Algorithm (deterministic for a seed):
  1. Order the groups by a seeded shuffle of their sorted keys (ties below follow it).
  2. Rare classes first: for each class (taxonomy id, or "(none)" for an empty label) in
     order of how many groups carry it (fewest first), if >= 2 groups carry it, make sure one
     is in validation (the first free one that fits the validation budget, else the smallest)
     and one in training (the first free one). "Where possible": a class in one group, or whose
     groups were all placed by rarer classes, cannot be on both sides.
  3. The other groups, in the seeded order, go to validation while it stays within
     round(val_fraction x images), else to training.
"""

from __future__ import annotations

import random
from collections import defaultdict


NONE_CLASS = "(none)"


def groups(keys: dict[str, tuple[str, str | None]]) -> dict[str, str]:
    """{id: (paper key, parent or None)} -> {id: group}: papers that share a parent are one group.

    The group's name is the smallest paper key in it, so inputs without parents keep their
    paper keys (and their split) unchanged.
    """
    up: dict[str, str] = {}

    def root(k: str) -> str:
        while up.get(k, k) != k:
            k = up[k]
        return k

    by_parent: dict[str, str] = {}
    for paper, parent in keys.values():
        up.setdefault(paper, paper)
        if parent is not None:
            other = by_parent.setdefault(parent, paper)
            a, b = root(paper), root(other)
            if a != b:
                up[max(a, b)] = min(a, b)
    return {i: root(paper) for i, (paper, _) in keys.items()}


def split_groups(items: list[tuple[str, str, list[str]]], val_fraction: float, seed: int,
                 class_order: list[str] | None = None) -> dict[str, str]:
    """items: (id, group key, feature ids). Returns {id: "train" | "val"}."""
    members: dict[str, list[str]] = defaultdict(list)
    classes: dict[str, set[str]] = defaultdict(set)
    for item_id, group, features in items:
        members[group].append(item_id)
        for c in features or [NONE_CLASS]:
            classes[c].add(group)
    keys = sorted(members)
    random.Random(seed).shuffle(keys)
    rank = {k: i for i, k in enumerate(keys)}
    size = {k: len(v) for k, v in members.items()}
    side: dict[str, str] = {}

    target = round(val_fraction * len(items))
    n_val = 0
    order = {c: i for i, c in enumerate(class_order or [])}
    for c in sorted(classes, key=lambda c: (len(classes[c]), order.get(c, len(order)), c)):
        groups = sorted(classes[c], key=rank.__getitem__)
        if len(groups) < 2:
            continue
        for want in ("val", "train"):
            if any(side.get(g) == want for g in groups):
                continue
            free = [g for g in groups if g not in side]
            if not free:
                continue
            pick = free[0]
            if want == "val":  # the first that fits the budget, else the smallest
                fits = [g for g in free if n_val + size[g] <= target]
                pick = fits[0] if fits else min(free, key=size.__getitem__)
                n_val += size[pick]
            side[pick] = want

    for g in keys:
        if g in side:
            continue
        if n_val + size[g] <= target:
            side[g] = "val"
            n_val += size[g]
        else:
            side[g] = "train"
    return {item_id: side[g] for g, ids in members.items() for item_id in ids}
