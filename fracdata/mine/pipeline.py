"""Mine sources into OUT/: the gates, panels and images for both formats, with rerun state.

Every candidate ends in exactly one place, at its own level:
  source  a file that cannot be parsed (corrupt, encrypted, not JATS, no images)
  figure  a figure refused whole (licence, filter, missing graphic, no caption, unreadable)
  image   a panel cut from a passed figure (too small, duplicate of an earlier image)
so kept + rejected = candidates, where candidates = rejected sources + figures found + images
cut - passed figures (a passed figure is counted by the images cut from it).

Each finished source leaves OUT/.state/<key>.json with its records and rejects; a rerun
reuses it when the source bytes and the settings are unchanged, and the manifest is always
assembled from the states of the sources named on this run, in order.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fracdata.files import atomic_write_bytes
from fracdata.errors import FracdataError
from fracdata.mine.article import source_kind
from fracdata.papers import SourceError
from fracdata.mine.filter import DEFAULT_MIN_SCORE, score_figure
from fracdata.licence import allowed
from fracdata.images import ImageReject, fit, fitted_size, open_normalised, save_png
from fracdata.stretch import range_note
from fracdata.mine.panels import letters, panel_captions, split_panels
from fracdata.untrusted import loads
from fracdata.records import ManifestRecord, Reject, Source, dump_jsonl, sha256_bytes, sha256_file

SOURCE_REASONS = {"malformed_xml", "not_jats", "corrupt_pdf", "encrypted_pdf", "no_images", "unreadable_source",
                  "corrupt_package"}
PAGE_REASONS = {"unreadable_page"}  # one PDF page lost, the rest of the paper mined
IMAGE_REASONS = {"too_small", "extreme_aspect_ratio", "duplicate_image"}
# Images are written as the builder reads them (fracdata.images): 8-bit L or RGB, PNG, named by id.
DEFAULT_MAX_SIDE = 1024  # 1024 px = 32 Qwen3-VL patches of 32 px; LlamaFactory downsizes to 768^2 px anyway
DEFAULT_MIN_SIDE = 64  # the builder's --min-side: smaller images are icons, logos or stray panel letters
MAX_ASPECT = 20.0  # the builder's --max-aspect: thinner strips are rules or scale bars, not fractographs
# bump when a parser change should make reruns mine every source again (2: graphic inputs; 3: ids = pixel hashes;
# 4: the article's own DOI and source.doi_from, licences outside <permissions>, panels in dark gutters)
STATE_VERSION = 4
SOURCE_SUFFIXES = ".nxml, .xml, .pdf or .tar.gz"


@dataclass(frozen=True)
class Settings:
    max_side: int = DEFAULT_MAX_SIDE
    min_side: int = DEFAULT_MIN_SIDE
    min_score: float = DEFAULT_MIN_SCORE
    allow_any_licence: bool = False
    panels: bool = True

    def key(self) -> str:
        return sha256_bytes(json.dumps([STATE_VERSION, asdict(self)], sort_keys=True).encode())[:16]


@dataclass
class SourceFile:
    path: Path  # resolved
    rel: str  # provenance: the SOURCE folder's name + the path inside it, or the file's name
    kind: str  # "jats" | "pdf" | "package"


@dataclass
class Result:
    sources: list[SourceFile]
    mined: int = 0  # sources parsed on this run
    reused: int = 0  # sources whose state from an earlier run was reused
    other_files: int = 0  # files in SOURCE folders that are not sources (figure files, PDFs' supplements)
    counts: Counter = field(default_factory=Counter)  # pages, figures, passed, images, kept
    reasons: Counter = field(default_factory=Counter)
    levels: Counter = field(default_factory=Counter)
    licences: Counter = field(default_factory=Counter)  # licence_not_allowed by licence
    written: dict = field(default_factory=dict)  # what -> (path, count)


def discover(sources: list[str]) -> tuple[list[SourceFile], int]:
    """SOURCE folders (searched recursively) and files -> sorted source files, count of other files."""
    found, other, seen = [], 0, set()
    for s in sources:
        p = Path(s)
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                broken = f.is_symlink() and not f.exists()  # listed, to count as unreadable_source
                if (f.is_file() or broken) and not any(part.startswith(".") for part in f.relative_to(p).parts):
                    real = Path(os.path.abspath(f)) if broken else f.resolve()
                    if source_kind(f) is None:
                        other += 1
                    elif real not in seen:
                        seen.add(real)
                        # named from the folder given: "papers/PMC123/article.nxml" for `mine papers/`
                        rel = (Path(p.resolve().name) / f.relative_to(p)).as_posix()
                        found.append(SourceFile(real, rel, source_kind(f)))
        elif p.is_file():
            if source_kind(p) is None:
                raise FracdataError(f"{s}: not a source (expected a folder, {SOURCE_SUFFIXES})")
            if p.resolve() not in seen:
                seen.add(p.resolve())
                found.append(SourceFile(p.resolve(), p.name, source_kind(p)))
        else:
            raise FracdataError(f"{s}: no such file or folder")
    if not found:
        raise FracdataError(f"{' '.join(sources)}: no {SOURCE_SUFFIXES} files found ({other} other files)")
    return found, other


def _reject(sf: SourceFile, reason: str, detail: str, image_id: str | None = None) -> dict:
    return Reject(stage="mine", file=sf.rel, id=image_id, reason=reason, detail=detail).model_dump(exclude_none=True)


def _empty_state(sf: SourceFile) -> dict:
    return {"records": [], "rejects": [], "evidence": [], "licences": {}, "kind": sf.kind, "inputs": [],
            "counts": {"pages": 0, "pages_rejected": 0, "figures": 0, "passed": 0, "images": 0}}


def _inputs(art, sf: SourceFile) -> list[dict]:
    """The files a source's figures were read from (or found missing), for the rerun check."""
    return [{"href": href, "file": found.name if found else None,
             "sha256": sha256_file(found) if found else None} for href, found in art.inputs]


def _inputs_unchanged(st: dict, sf: SourceFile) -> bool:
    """Every graphic the source read is still the same file with the same bytes, and every
    graphic that was missing is still missing (one supplied since makes the state stale)."""
    from fracdata.mine.jats import resolve_graphic

    for inp in st.get("inputs", []):
        found = resolve_graphic(inp["href"], sf.path.parent)
        if (found.name if found else None) != inp["file"]:
            return False
        try:
            if found is not None and sha256_file(found) != inp["sha256"]:
                return False
        except OSError:
            return False
    return True


def mine_source(sf: SourceFile, settings: Settings, images_dir: Path) -> dict:
    """Parse one source and pass its figures through the gates; return its state."""
    from fracdata.mine.jats import parse_jats
    from fracdata.mine.package import parse_package
    from fracdata.mine.pdf import parse_pdf

    st = _empty_state(sf)
    c = st["counts"]
    try:
        art = {"jats": parse_jats, "pdf": parse_pdf, "package": parse_package}[sf.kind](sf.path)
    except SourceError as e:
        st["rejects"].append(_reject(sf, e.reason, e.detail))
        return st
    c["pages"] = art.pages
    st["inputs"] = _inputs(art, sf)
    for fr in art.rejects:
        if fr.reason in PAGE_REASONS:  # a page, not a figure: counted on its own line
            c["pages_rejected"] += 1
            st["rejects"].append(_reject(sf, fr.reason, fr.detail))
            continue
        c["figures"] += 1
        where = f"{fr.label or 'image'}{f' (page {fr.page})' if fr.page else ''}"
        st["rejects"].append(_reject(sf, fr.reason, f"{where}: {fr.detail}"))
    for fig in art.figures:
        im = crop = None  # the previous figure's pixels go before the next is decoded: one at a time
        c["figures"] += 1
        where = f"{fig.label or 'figure'}{f' (page {fig.page})' if fig.page else ''}"
        if not (settings.allow_any_licence or allowed(art.licence)):
            lic = art.licence or ("unrecognised" if art.licence_raw else "none stated")
            st["licences"][lic] = st["licences"].get(lic, 0) + 1
            said = f" (stated: {art.licence_raw[:200]})" if lic == "unrecognised" else ""
            st["rejects"].append(_reject(sf, "licence_not_allowed", f"{where}: {lic}{said}"))
            continue
        verdict = score_figure(fig.caption, fig.excerpts, settings.min_score)
        if not verdict.keep:
            st["rejects"].append(_reject(sf, "not_fracture", f"{where}: {verdict.describe()} < {settings.min_score:g}"))
            continue
        try:  # a PDF figure's image is decoded only now (fracdata/mine/pdf.py)
            im = open_normalised(fig.image() if callable(fig.image) else fig.image)
        except ImageReject as e:  # the gate's reason: decode_error, not_an_image, too_many_pixels, ...
            st["rejects"].append(_reject(sf, e.reason, f"{where}: {e.detail}"))
            continue
        c["passed"] += 1
        if range_note(im):  # a 16-bit/float figure with a degenerate dynamic range: kept, counted, warned
            c["dynamic_range_warnings"] = c.get("dynamic_range_warnings", 0) + 1
        boxes = split_panels(im) if settings.panels and fig.panel is None else [(0, 0, *im.size)]
        names = [fig.panel] if fig.panel else (letters(len(boxes)) if len(boxes) > 1 else [None])
        per_panel = panel_captions(fig.caption)
        for panel, box in zip(names, boxes):
            c["images"] += 1
            crop = im.crop(box)
            tag = f"{where}{f' panel {panel}' if panel else ''}"
            w, h = fitted_size(crop.size, settings.max_side)  # the builder sees the written size
            if min(w, h) < settings.min_side:
                st["rejects"].append(_reject(sf, "too_small", f"{tag}: {w}x{h} px, shorter side < {settings.min_side}"))
                continue
            if max(w, h) > MAX_ASPECT * min(w, h):
                st["rejects"].append(_reject(sf, "extreme_aspect_ratio", f"{tag}: {w}x{h} px, aspect > {MAX_ASPECT:g}"))
                continue
            image_id = save_png(fit(crop, settings.max_side), images_dir)  # id = sha256 of the pixels
            src = Source(doi=art.doi, doi_from=art.doi_from, title=art.title, journal=art.journal, year=art.year, figure=fig.label,
                         panel=panel, licence=art.licence, url=art.url, file=sf.rel, page=fig.page)
            rec = ManifestRecord(id=image_id, image=f"images/{image_id}.png", source=src,
                                 caption=per_panel.get(panel, fig.caption) if panel else fig.caption,
                                 excerpts=fig.excerpts)
            st["records"].append(rec.model_dump(exclude_none=True))
            st["evidence"].append({"id": image_id, "file": sf.rel, "figure": fig.label, "panel": panel,
                                   "score": verdict.score, "evidence": verdict.evidence})
    return st


def _load_state(path: Path, digest: str, settings: Settings, images_dir: Path, sf: SourceFile) -> dict | None:
    if not path.is_file():
        return None
    try:  # a state damaged by an outside hand: the source is mined again
        st = loads(path.read_bytes().decode("utf-8"))
    except ValueError:
        return None
    if not isinstance(st, dict) or st.get("sha256") != digest or st.get("settings") != settings.key():
        return None
    if not _inputs_unchanged(st, sf):
        return None  # a figure file changed, appeared or went away since: its source is mined again
    if not all((images_dir / f"{r['id']}.png").is_file() for r in st["records"]):
        return None  # images deleted since: mine again rather than point at missing files
    return st


def mine(sources: list[str], out: Path, settings: Settings, shard: tuple[int, int] = (0, 1),
         force: bool = False, progress=None) -> Result:
    files, other = discover(sources)
    i, n = shard
    # Round-robin over the sorted list: every array task must be given the same SOURCE list.
    files = files[i::n]
    res = Result(sources=files, other_files=other)
    images_dir, state_dir = out / "images", out / ".state"
    images_dir.mkdir(parents=True, exist_ok=True)
    state_dir.mkdir(exist_ok=True)
    states = []
    for sf in files:
        try:
            digest = sha256_file(sf.path)
        except OSError as e:  # deleted or unreadable since it was listed: counted, and no state kept
            st = _empty_state(sf)
            st["rejects"].append(_reject(sf, "unreadable_source", f"{type(e).__name__}: {e}"))
            states.append(st)
            res.mined += 1
            continue
        spath = state_dir / f"{sha256_bytes(str(sf.path).encode())[:16]}.json"
        st = None if force else _load_state(spath, digest, settings, images_dir, sf)
        if st is None:
            st = mine_source(sf, settings, images_dir)
            st.update(source=sf.rel, path=str(sf.path), sha256=digest, settings=settings.key())
            # the done marker appears only once the source (and each of its images) is complete
            atomic_write_bytes(spath, json.dumps(st, sort_keys=True).encode())
            res.mined += 1
        else:
            res.reused += 1
        states.append(st)
        if progress:
            progress(sf)
    return _assemble(states, out, res)


def _assemble(states: list[dict], out: Path, res: Result) -> Result:
    records, rejects, evidence, first = [], [], [], {}
    for st in states:
        res.counts.update(st["counts"])
        res.licences.update(st["licences"])
        rejects += st["rejects"]
        ev = {e["id"]: e for e in st["evidence"]}
        for rec in st["records"]:
            where = f"{rec['source'].get('figure') or 'figure'}{' panel ' + rec['source']['panel'] if rec['source'].get('panel') else ''}"
            if rec["id"] in first:
                rejects.append(Reject(stage="mine", file=rec["source"]["file"], id=rec["id"], reason="duplicate_image",
                                      detail=f"{where}: same bytes as {first[rec['id']]}").model_dump(exclude_none=True))
                continue
            first[rec["id"]] = f"{rec['source']['file']} {where}"
            records.append(rec)
            evidence.append(ev[rec["id"]])
    for r in rejects:
        res.reasons[r["reason"]] += 1
        r_ = r["reason"]
        res.levels["source" if r_ in SOURCE_REASONS else "page" if r_ in PAGE_REASONS
                   else "image" if r_ in IMAGE_REASONS else "figure"] += 1
    res.counts["kept"] = len(records)
    res.counts["sources_rejected"] = res.levels["source"]

    keep = {f"{r['id']}.png" for r in records}
    stale = [p for p in (out / "images").glob("*.png") if p.name not in keep]
    for p in stale:  # images of an earlier run with other settings or sources: untraceable now
        p.unlink()
    for p in (out / "images").glob(".*.tmp"):  # half-written by a killed run (fracdata.files)
        p.unlink(missing_ok=True)
    res.written = {
        "manifest": (out / "manifest.jsonl", dump_jsonl(records, out / "manifest.jsonl")),
        "rejects": (out / "rejects.jsonl", dump_jsonl(rejects, out / "rejects.jsonl")),
        "evidence": (out / "evidence.jsonl", dump_jsonl(evidence, out / "evidence.jsonl")),
        "images": (out / "images", len(records)),
        "stale images removed": (out / "images", len(stale)),
    }
    return res
