"""What `fracdata mine` writes into OUT, and how it knows its own earlier output there.

OUT holds manifest.jsonl, rejects.jsonl, evidence.jsonl, mine.json, images/<pixel id>.png and
.state/. A rerun deletes the PNGs in images/ that no kept record names (stale images), so an OUT
that holds anything else (a folder of papers, someone's images/) is refused before a byte is
written, unless --overwrite (fracdata.files.check_outputs).
"""

from __future__ import annotations

import re
from pathlib import Path

from fracdata.files import Output, folder_with, jsonl_of

_ID_PNG = re.compile(r"^[0-9a-f]{64}\.png$")


def _images(path: Path) -> str | None:
    if not path.is_dir():
        return "not a folder"
    foreign = sorted(p.name for p in path.glob("*.png") if not _ID_PNG.match(p.name))
    if foreign:
        return (f"{len(foreign)} PNG files not named by a pixel id, e.g. {foreign[0]}, which a rerun would delete "
                "as stale")
    return None


def outputs(out: Path) -> list[Output]:
    from fracdata.records import ManifestRecord, Reject

    return [Output(out, "mine output folder", folder_with(".state", "mine.json")),
            Output(out / "manifest.jsonl", "manifest", jsonl_of(ManifestRecord, "a ManifestRecord")),
            Output(out / "rejects.jsonl", "rejects file", jsonl_of(Reject, "a reject")),
            Output(out / "evidence.jsonl", "evidence file"), Output(out / "mine.json", "mine summary"),
            Output(out / "images", "mine images folder", _images)]
