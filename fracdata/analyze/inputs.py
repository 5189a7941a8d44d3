"""The files `fracdata analyze IMAGE...` reads: files as given, folders and glob patterns expanded;
`listed_in` adds a file with the same pixels as an earlier one to that one's analysis.

A folder gives its image files (by suffix, as watch mode reads a folder: .png .jpg .jpeg .tif .tiff
.bmp .webp, any case; not hidden; not recursive), sorted by name; its other entries are listed as
ignored. A pattern (an argument with * ? or [ that names no existing file: the shell left it
unexpanded, e.g. quoted) is expanded with Python's glob, `**` recursing, sorted. A path given
twice (directly, in a folder or by a pattern) is read once. A pattern matching no file is an
error before any model loads; a folder without image files and a plain path that does not exist
are passed on and rejected with their reason (missing_image), like any unreadable file.
"""

from __future__ import annotations

import glob
from pathlib import Path

from fracdata.errors import FracdataError

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
MAGIC = set("*?[")


def _image_file(p: Path) -> bool:
    return p.suffix.lower() in SUFFIXES and not p.name.startswith(".") and p.is_file()


def expand(args: list[str], log=print) -> list[Path]:
    """Input files, in the order given (folders and patterns sorted), each once."""
    out: list[Path] = []
    seen: set[Path] = set()

    def add(p: Path) -> None:
        key = p.resolve() if p.exists() else p.absolute()
        if key not in seen:
            seen.add(key)
            out.append(p)

    for arg in args:
        p = Path(arg)
        if p.is_dir():
            entries = sorted(p.iterdir())
            images = [e for e in entries if _image_file(e)]
            if not images:  # passed on: analyze rejects it (missing_image), counted like any unreadable input
                log(f"{p}: a folder with no image files ({', '.join(sorted(SUFFIXES))}; hidden files and subfolders "
                    "are not read: give 'DIR/**/*.tif' for those)")
                add(p)
                continue
            ignored = [e for e in entries if e not in images]
            if ignored:
                log(f"{p}: reading {len(images)} image files; ignoring {len(ignored)} other entries (not an image "
                    f"suffix, hidden, or a folder): " + ", ".join(e.name for e in ignored[:5])
                    + (", ..." if len(ignored) > 5 else ""))
            for e in images:
                add(e)
        elif not p.exists() and MAGIC & set(arg):
            hits = sorted(Path(h) for h in glob.glob(arg, recursive=True))
            files = [h for h in hits if h.is_file()]
            if not files:
                raise FracdataError(f"{arg}: the pattern matches no file")
            for h in files:
                add(h)
        else:
            add(p)
    return out


def listed_in(analysis, path: Path, sha: str | None, out_dir: Path, log=print) -> None:
    """Add another file with the same pixels to an analysis and rewrite its JSON and Markdown."""
    from fracdata.analyze.report import write_record
    from fracdata.analyze.schema import InputFile

    analysis.files.append(InputFile(path=str(path), file_sha256=sha))
    write_record(analysis, out_dir)
    log(f"{path}: the same pixels as {analysis.image} (id {analysis.id[:12]}): analysed once; listed in "
        f"{out_dir / analysis.id[:12]}.{{json,md}}")
