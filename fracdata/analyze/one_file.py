"""One image file through the analyzer: its outputs (json, md, png) or a counted reject, and the
one-line summary printed for it; DEGRADED names the flags of a specialist-only answer. Shared by the
command line (cli.py) and the watch loop (watch.py)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

DEGRADED = ("generalist_failed", "budget_exhausted")


def summary_line(a) -> str:
    s = a.specialist
    feats = ", ".join(f"{f.id}" + (f" {f.probability:.2f}" if f.probability is not None else "") for f in s.features)
    kinds = Counter(f.kind for f in a.flags)
    gen = "generalist report" if a.generalist else "specialist only"
    flags = ", ".join(f"{k} {n}" for k, n in sorted(kinds.items())) or "none"
    person = "NEEDS A PERSON" if a.needs_person else "no person needed"
    return f"{len(s.features)} features ({feats or s.status}); {person}; {gen}; flags: {flags}"


def analyse_file(analyzer, path: Path, context, out_dir: Path, log=print, done=frozenset()):
    """(Analysis, outputs) or (None, Reject) for one file; AlreadyDone (its pixel id is in
    `done`) and FracdataError pass through. Any damage to the file is a Reject (the image gate)."""
    from fracdata.analyze.report import write_outputs
    from fracdata.images import ImageReject
    from fracdata.records import Reject

    try:
        analysis, image = analyzer.analyse(path, str(path), context, done)
    except ImageReject as e:
        return None, Reject(stage="analyze", file=str(path), reason=e.reason, detail=e.detail, file_sha256=_sha(path))
    paths = write_outputs(analysis, image, out_dir)
    log(f"wrote {out_dir / analysis.id[:12]}.{{json,md,png}} for {path}: {summary_line(analysis)}")
    return analysis, paths


def _sha(path: Path) -> str | None:
    """sha256 of a regular file's bytes (a FIFO is never opened), else None."""
    import stat

    from fracdata.records import sha256_file

    try:
        return sha256_file(path) if stat.S_ISREG(path.stat().st_mode) else None
    except (OSError, ValueError):
        return None
