"""What a source parser returns: an article's metadata and its figure candidates.

Parsers (jats.py, pdf.py) know formats, not policy: they report every figure they find,
and every figure they cannot use as a `FigureReject`; the licence gate, the filter, panel
splitting and image writing happen once, in pipeline.py, for both formats.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

@dataclass
class Figure:
    label: str | None  # as printed: "Fig. 3", "Figure 3"
    caption: str
    excerpts: list[str]
    # a Path (JATS graphic file), or a callable returning a PIL image (PDF: decoded only when the
    # pipeline asks, one at a time), opened by fracdata.images.open_normalised
    image: Any
    page: int | None = None  # PDF page, 1-based
    panel: str | None = None  # set by the PDF parser when one caption covers several images


@dataclass
class FigureReject:
    label: str | None
    reason: str
    detail: str
    page: int | None = None


@dataclass
class Article:
    doi: str | None = None
    doi_from: str = "none"  # where the DOI was read: metadata | xmp | first_page | jats | none (identity.py)
    title: str | None = None
    journal: str | None = None
    year: int | None = None
    licence: str | None = None  # normalised, e.g. "CC BY 4.0"; None when the paper states none
    licence_raw: str | None = None  # what the paper said, for the reject detail
    url: str | None = None
    pages: int = 0  # PDF pages read (0 for JATS)
    figures: list[Figure] = field(default_factory=list)
    rejects: list[FigureReject] = field(default_factory=list)
    # Files read besides the source itself, for the rerun check: (href, the file it resolved
    # to, or None when it was missing; a graphic supplied later must make the source stale).
    inputs: list[tuple[str, Path | None]] = field(default_factory=list)


def source_kind(path: Path) -> str | None:
    """"jats", "pdf", "package" (an archive's per-article .tar.gz: JATS plus figures), or None."""
    if path.name.lower().endswith((".tar.gz", ".tgz")):
        return "package"
    return {".nxml": "jats", ".xml": "jats", ".pdf": "pdf"}.get(path.suffix.lower())
