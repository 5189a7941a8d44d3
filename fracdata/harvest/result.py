"""What one harvest run did: the counts and ledger lines that fetch.py fills per article and
pipeline.py returns (its own module, so both import it one way)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Result:
    hits: int = 0  # search hits (whole search, before sharding)
    pages: int = 0  # search pages requested on this run
    in_shard: list = field(default_factory=list)
    entries: list = field(default_factory=list)  # ledger lines, in search order
    now: int = 0  # articles finished on this run
    reused: int = 0  # articles finished on an earlier run
    unprocessed: int = 0  # hits left after --limit was reached
    files: Counter = field(default_factory=Counter)  # fetched, reused (staged), bytes

