"""What one build reads and how: BuildConfig (seed, split, rotations, image limits, dedup distance,
taxonomy) and Inputs (manifest, labels, manual collection, gold, waivers)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class BuildConfig:
    seed: int = 0
    val_fraction: float = 0.1  # of images, rounded; grouped by paper so the real share varies
    rotations: tuple[int, ...] = (90, 180, 270)  # degrees counter-clockwise, training split only
    min_side: int = 64
    max_pixels: int = 50_000_000
    max_aspect: float = 20.0
    near_dup_distance: int = 6  # phash bits; see dedup.py for why 6
    taxonomy: str | None = None  # None = the packaged taxonomy.yaml
    keep_negatives: bool = False  # keep images labelled "not a fracture surface" as "Features: none" rows


@dataclass
class Inputs:
    manifest: Path
    labels: list[Path]
    manual: Path | None = None
    gold: list[Path] = field(default_factory=list)
    waivers: list[Path] = field(default_factory=list)  # gold/training pairs a person judged distinct (waivers.py)

    def listing(self) -> list[tuple[str, Path]]:
        out = [("manifest", self.manifest)] + [("labels", p) for p in self.labels]
        if self.manual:
            out.append(("manual", self.manual))
        return out + [("gold", p) for p in self.gold] + [("waivers", p) for p in self.waivers]
