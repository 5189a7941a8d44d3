"""`fracdata analyze --watch DIR`: analyse each new image in DIR once, append each result to a log.

State is the log itself (one Analysis per line; <log stem>.rejects.jsonl for images it cannot
read): on start the file hashes (`file_sha256`) and pixel ids (`id`) in both are done, so a
killed and restarted watcher analyses every image exactly once, and a damaged file is rejected
once, not again on every restart (the image gate turns any damage into a reject). Appending the
line (flushed, fsynced) is the commit: a kill before it means the image is analysed again on
restart (its output files are simply rewritten), a kill during it leaves a torn last line, which
is cut off on restart (and said so). The same bytes under a new name, or the same pixels in
another file (a re-saved PNG), are already done. Earlier spend in the log counts against
--budget-usd. A file is read only when its size and mtime have not changed for --settle
seconds, because a microscope may still be writing it. Files without an image suffix, hidden
files and entries that are not regular files (a FIFO, a folder) are listed once as ignored.
The watcher never reads its own outputs: with --out inside the watched folder, the <id12>.png it
writes (and an earlier run's, named by an id in the log) are skipped and counted, never analysed
as new images (each would make a new report image, for ever). `--once` is one pass over the
images present when it starts (it waits only for those still being written), then exits.
SIGTERM/SIGINT stop after the current image.
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path

from pydantic import BaseModel, ConfigDict

from fracdata.errors import FracdataError
from fracdata.records import Reject, read_jsonl

SUFFIXES = {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}


class LogLine(BaseModel):
    """What the log's state needs from a line (an Analysis or a Reject): its ids and its cost."""
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    file_sha256: str | None = None
    cost_usd: float | None = None


def load_log(path: Path, log=print) -> tuple[set[str], set[str], float]:
    """(pixel ids, file hashes, dollars spent) in the log, repairing a torn last line. A line
    written before analyses carried `file_sha256` named its file by that hash in `id`."""
    if not path.exists():
        return set(), set(), 0.0
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
        log(f"{path}: cut a torn last line ({len(data) - cut} bytes, an interrupted append); that image is analysed again")
        data = data[:cut]
    ids, files, spent = set(), set(), 0.0
    for lineno, rec in read_jsonl(path, LogLine, "analyze"):
        if isinstance(rec, Reject):
            raise FracdataError(f"{path}:{lineno}: not a JSON line ({rec.detail}); move the file away or fix the line")
        if rec.id:
            ids.add(rec.id)
        if rec.file_sha256 or rec.id:
            files.add(rec.file_sha256 or rec.id)
        spent += rec.cost_usd or 0.0
    return ids, files, spent


def append_line(path: Path, obj: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def _log_kind(path: Path) -> str | None:
    """`Output.own` for a watch log: its first line is an analysis or an analyze reject."""
    from fracdata.records import json_lines

    for lineno, obj, _, why in json_lines(path):
        ok = obj is not None and (obj.get("schema_name") == "fracdata-analysis" or obj.get("stage") == "analyze")
        return None if ok else f"line {lineno} is not an analysis{f' ({why})' if why else ''}"
    return None


def watch(args, context: str | None, out_dir: Path) -> int:
    from fracdata.analyze.one_file import analyse_file
    from fracdata.analyze.options import build_analyzer
    from fracdata.files import Output, check_outputs

    folder = Path(args.watch)
    if not folder.is_dir():
        raise FracdataError(f"{folder}: --watch needs an existing folder")
    log_path = Path(args.log) if args.log else out_dir / "analyses.jsonl"
    rej_path = log_path.with_name(log_path.stem + ".rejects.jsonl")
    check_outputs([Output(log_path, "watch log", _log_kind), Output(rej_path, "watch rejects log", _log_kind)],
                  [args.context], overwrite=args.overwrite)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ids, files, spent = load_log(log_path)
    rej_ids, rej_files, _ = load_log(rej_path)
    done = {"ids": ids | rej_ids, "files": files | rej_files}
    n_rej = sum(1 for line in rej_path.read_bytes().splitlines() if line.strip()) if rej_path.exists() else 0
    own = _own_outputs(folder, out_dir, ids)
    print(f"watch {folder}: {len(ids)} analyses in {log_path}, {n_rej} rejects in {rej_path}; "
          f"polling every {args.poll:g} s" + (" (once)" if args.once else "; stop with Ctrl-C or SIGTERM")
          + ("; --out is the watched folder: the watcher's own <id12>.png are skipped" if own is not None else ""))
    analyzer = build_analyzer(args, spent_before=spent)

    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True
        print(f"watch: {signal.Signals(signum).name}: stopping after the current image", flush=True)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    seen: dict[Path, tuple[int, int] | None] = {}  # path -> (size, mtime_ns) handled; None = ignored
    counts: Counter = Counter()
    # --once: the entries present now, and only those (what appears later, our outputs included, waits for a next run)
    only = set(folder.iterdir()) if args.once else None
    try:
        while not stop["now"]:
            pending = _scan(folder, seen, counts, args.settle, only, own)
            for path in pending:
                if stop["now"]:
                    break
                st = path.stat()
                seen[path] = (st.st_size, st.st_mtime_ns)
                written = _one(analyzer, path, context, out_dir, log_path, rej_path, done, counts, analyse_file)
                if own is not None and written:
                    own.add(written)
            if args.once and not _unsettled(folder, seen, only):
                break
            time.sleep(args.poll)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    print(f"watch {folder}: analysed {counts['analysed']}, rejected {counts['rejected']}, already done "
          f"{counts['already_done']}, ignored {counts['ignored']} (not an image suffix or hidden)"
          + (f", skipped {counts['own_output']} of its own outputs" if counts["own_output"] else "")
          + f"; log {log_path} ({len(ids) + counts['analysed']} lines)")
    return 1 if counts["rejected"] or counts["degraded"] else 0


def _own_outputs(folder: Path, out_dir: Path, ids: set[str]) -> set[str] | None:
    """When --out is the watched folder: the names of the report images it holds or will hold
    (<id12>.png of every id in the log; the run adds each it writes), else None."""
    try:
        same = folder.resolve() == out_dir.resolve()
    except OSError:
        return None
    return {f"{i[:12]}.png" for i in ids} if same else None


def _unsettled(folder: Path, seen: dict, only: set | None = None) -> list[str]:
    """Names of image files not handled yet (still being written, or new since the last scan)."""
    return [p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
            and not p.name.startswith(".") and _stamp(p) != seen.get(p) and (only is None or p in only)
            and seen.get(p, ()) is not None]


def _stamp(p: Path):
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _scan(folder: Path, seen: dict, counts: Counter, settle: float, only: set | None = None,
          own: set[str] | None = None) -> list[Path]:
    """Image files new or changed since they were handled and unchanged for `settle` s, oldest
    first; with `only`, among those entries; `own`: names of the watcher's outputs, skipped."""
    now = time.time_ns()
    ready = []
    for p in sorted(folder.iterdir()):
        if only is not None and p not in only:
            continue
        if own is not None and p.name in own:
            if p not in seen:
                seen[p] = None
                counts["own_output"] += 1
            continue
        hidden, regular = p.name.startswith("."), p.is_file()
        if hidden or p.suffix.lower() not in SUFFIXES or not regular:
            if p not in seen and (regular or not p.is_dir() or p.suffix.lower() in SUFFIXES):  # said once per file
                why = ("hidden file" if hidden else "not an image suffix" if p.suffix.lower() not in SUFFIXES
                       else "not a regular file (a folder, FIFO, socket, device or broken symlink)")
                print(f"watch: ignoring {p}: {why}")
                seen[p] = None
                counts["ignored"] += 1
            continue
        stamp = _stamp(p)
        if stamp is None or stamp == seen.get(p) or now - stamp[1] < settle * 1e9:
            continue
        ready.append((stamp[1], p))
    return [p for _, p in sorted(ready)]


def _one(analyzer, path, context, out_dir, log_path, rej_path, done, counts, analyse_file) -> str | None:
    """Analyse one file; returns the name of the report image written, if any."""
    from fracdata.analyze.one_file import DEGRADED
    from fracdata.analyze.pipeline import AlreadyDone
    from fracdata.records import sha256_file

    try:
        fid = sha256_file(path)
    except OSError:
        fid = None  # unreadable: analyse_file records why
    if fid is not None and fid in done["files"]:
        counts["already_done"] += 1
        return
    try:
        analysis, result = analyse_file(analyzer, path, context, out_dir, done=done["ids"])
    except AlreadyDone:  # other bytes, the same pixels (a re-saved copy)
        counts["already_done"] += 1
        return
    if analysis is None:
        print(f"rejected {path}: {result.reason}: {result.detail}")
        append_line(rej_path, result.model_dump(exclude_none=True))
        counts["rejected"] += 1
        if result.file_sha256:
            done["files"].add(result.file_sha256)
        return
    append_line(log_path, analysis.model_dump(mode="json"))
    done["ids"].add(analysis.id)
    done["files"].add(analysis.file_sha256)
    counts["analysed"] += 1
    counts["degraded"] += any(f.kind in DEGRADED for f in analysis.flags)
    return result["png"].name
