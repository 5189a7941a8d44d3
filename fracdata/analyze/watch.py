"""`fracdata analyze --watch DIR`: analyse each new image in DIR once, append each result to a log.

State is the log itself (one Analysis per line; <log stem>.rejects.jsonl for images it cannot
read): on start the ids in both are done, so a killed and restarted watcher analyses every
image exactly once. Appending the line (flushed, fsynced) is the commit: a kill before it means
the image is analysed again on restart (its output files are simply rewritten), a kill during it
leaves a torn last line, which is cut off on restart (and said so). The same bytes under a new
name are the same id: not analysed again. Earlier spend in the log counts against --budget-usd.
A file is read only when its size and mtime have not changed for --settle seconds, because a
microscope may still be writing it. Files without an image suffix and hidden files are listed
once as ignored. SIGTERM/SIGINT stop after the current image.
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
    """What the log's state needs from a line (an Analysis or a Reject): its id and its cost."""
    model_config = ConfigDict(extra="allow")
    id: str | None = None
    cost_usd: float | None = None


def load_log(path: Path, log=print) -> tuple[set[str], float]:
    """(ids already in the log, dollars already spent), repairing a torn last line."""
    if not path.exists():
        return set(), 0.0
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        cut = data.rfind(b"\n") + 1
        with open(path, "r+b") as f:
            f.truncate(cut)
        log(f"{path}: cut a torn last line ({len(data) - cut} bytes, an interrupted append); that image is analysed again")
        data = data[:cut]
    ids, spent = set(), 0.0
    for lineno, rec in read_jsonl(path, LogLine, "analyze"):
        if isinstance(rec, Reject):
            raise FracdataError(f"{path}:{lineno}: not a JSON line ({rec.detail}); move the file away or fix the line")
        if rec.id:  # a reject of a file that could not be read has no id
            ids.add(rec.id)
        spent += rec.cost_usd or 0.0
    return ids, spent


def append_line(path: Path, obj: dict) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
        f.flush()
        os.fsync(f.fileno())


def watch(args, context: str | None, out_dir: Path) -> int:
    from fracdata.analyze import analyse_file
    from fracdata.analyze.options import build_analyzer

    folder = Path(args.watch)
    if not folder.is_dir():
        raise FracdataError(f"{folder}: --watch needs an existing folder")
    log_path = Path(args.log) if args.log else out_dir / "analyses.jsonl"
    rej_path = log_path.with_name(log_path.stem + ".rejects.jsonl")
    log_path.parent.mkdir(parents=True, exist_ok=True)
    ids, spent = load_log(log_path)
    rej_ids, _ = load_log(rej_path)
    done = ids | rej_ids
    print(f"watch {folder}: {len(ids)} analyses in {log_path}, {len(rej_ids)} rejects in {rej_path}; "
          f"polling every {args.poll:g} s" + (" (once)" if args.once else "; stop with Ctrl-C or SIGTERM"))
    analyzer = build_analyzer(args, spent_before=spent)

    stop = {"now": False}

    def on_signal(signum, frame):
        stop["now"] = True
        print(f"watch: {signal.Signals(signum).name}: stopping after the current image", flush=True)

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    seen: dict[Path, tuple[int, int] | None] = {}  # path -> (size, mtime_ns) handled; None = ignored
    counts: Counter = Counter()
    try:
        while not stop["now"]:
            pending = _scan(folder, seen, counts, args.settle)
            for path in pending:
                if stop["now"]:
                    break
                st = path.stat()
                seen[path] = (st.st_size, st.st_mtime_ns)
                _one(analyzer, path, context, out_dir, log_path, rej_path, done, counts, analyse_file)
            if args.once and not _unsettled(folder, seen):
                break
            time.sleep(args.poll)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    print(f"watch {folder}: analysed {counts['analysed']}, rejected {counts['rejected']}, already done "
          f"{counts['already_done']}, ignored {counts['ignored']} (not an image suffix or hidden); "
          f"log {log_path} ({len(ids) + counts['analysed']} lines)")
    return 1 if counts["rejected"] or counts["degraded"] else 0


def _unsettled(folder: Path, seen: dict) -> list[str]:
    """Names of image files not handled yet (still being written, or new since the last scan)."""
    return [p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES
            and not p.name.startswith(".") and _stamp(p) != seen.get(p)]


def _stamp(p: Path):
    try:
        st = p.stat()
    except FileNotFoundError:
        return None
    return (st.st_size, st.st_mtime_ns)


def _scan(folder: Path, seen: dict, counts: Counter, settle: float) -> list[Path]:
    """Image files new or changed since they were handled and unchanged for `settle` s, oldest first."""
    now = time.time_ns()
    ready = []
    for p in sorted(folder.iterdir()):
        if not p.is_file():
            continue
        if p.name.startswith(".") or p.suffix.lower() not in SUFFIXES:
            if p not in seen:  # said once per file, not once per scan
                print(f"watch: ignoring {p}: " + ("hidden file" if p.name.startswith(".") else "not an image suffix"))
                seen[p] = None
                counts["ignored"] += 1
            continue
        stamp = _stamp(p)
        if stamp is None or stamp == seen.get(p) or now - stamp[1] < settle * 1e9:
            continue
        ready.append((stamp[1], p))
    return [p for _, p in sorted(ready)]


def _one(analyzer, path, context, out_dir, log_path, rej_path, done, counts, analyse_file) -> None:
    from fracdata.analyze import DEGRADED
    from fracdata.records import sha256_file

    try:
        fid = sha256_file(path)
    except OSError:
        fid = None  # unreadable: analyse_file records why
    if fid in done:
        counts["already_done"] += 1
        return
    analysis, result = analyse_file(analyzer, path, context, out_dir)
    if analysis is None:
        print(f"rejected {path}: {result.reason}: {result.detail}")
        append_line(rej_path, result.model_dump(exclude_none=True))
        counts["rejected"] += 1
        if result.id:
            done.add(result.id)
        return
    append_line(log_path, analysis.model_dump(mode="json"))
    done.add(analysis.id)
    counts["analysed"] += 1
    counts["degraded"] += any(f.kind in DEGRADED for f in analysis.flags)
