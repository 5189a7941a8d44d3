"""Files every stage writes or reads the same way: atomic writes, one writer per output, YAML mappings.

Atomic writes: a file's final name only ever holds complete contents. The data goes to a hidden temporary file beside the target (`.<name>.<pid>.<thread>.tmp`,
so concurrent writers of the same name never share one), then `os.replace` puts it in
place. A process killed mid-write leaves only the temporary file, never a truncated
target. `durable=True` also fsyncs before the rename (state a crash must not lose).

One writer: `exclusive(lock_file, what)` holds an OS lock (fcntl.flock) for as long as a run writes
an output; a second run on the same output stops with one line naming the holder (pid, host,
since). The OS drops the lock when its process dies, however it dies, so a killed run never
leaves a stale lock; the file itself stays (removing it would race a run that is opening it).

SQLite caches (label's, fracbench's): `sqlite_errors` turns a damaged or unwritable one into one
line naming it.

YAML: a file that must hold a mapping; every failure is one line naming the file: unreadable,
not UTF-8, not YAML, nested deeper than Python can read, aliases that expand past MAX_VALUES
(a "billion laughs" file), or a string holding a NUL or a lone surrogate (fracdata/untrusted.py).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
from contextlib import contextmanager
from pathlib import Path

from fracdata.errors import FracdataError

MAX_VALUES = 1_000_000  # values a config may hold once its aliases are expanded; real ones hold < 10,000


@contextmanager
def atomic_path(path: str | Path, durable: bool = False):
    """Yield a temporary path to write; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        yield tmp
        if durable:
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes, durable: bool = False) -> None:
    with atomic_path(path, durable) as tmp:
        tmp.write_bytes(data)


def load_mapping(path: str | Path, kind: str, text: str | None = None) -> dict:
    """The mapping in `path` (or in `text`, read from `path` elsewhere), else FracdataError.

    `kind` names what the file should be ("recipe", "task", "price table", ...) in the message.
    """
    import yaml

    from fracdata.untrusted import escape, expanded_size, text_problem

    where = escape(str(path))
    try:
        data = yaml.safe_load(Path(path).read_bytes().decode("utf-8") if text is None else text)
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path; UnicodeDecodeError is one too
        if isinstance(e, UnicodeDecodeError):
            raise FracdataError(f"{where}: the {kind} file is not UTF-8 (byte {e.start})") from None
        raise FracdataError(f"{where}: cannot read the {kind} file ({getattr(e, 'strerror', None) or e})") from None
    except yaml.YAMLError as e:
        raise FracdataError(f"{where}: not valid YAML ({escape(str(e).splitlines()[0])})") from None
    except RecursionError:
        raise FracdataError(f"{where}: the {kind} file is nested too deeply to read (more than ~1,000 levels)") from None
    if not isinstance(data, dict):
        raise FracdataError(f"{where}: a {kind} file must be a YAML mapping")
    if expanded_size(data, MAX_VALUES) > MAX_VALUES:
        raise FracdataError(f"{where}: the {kind} file expands to more than {MAX_VALUES:,} values "
                            "(YAML aliases referring to aliases): write it out plainly")
    problem = text_problem(data, nul=True)
    if problem is not None:
        raise FracdataError(f"{where}: {problem}")
    return data


@contextmanager
def exclusive(lock_file: str | Path, target: str | Path, who: str, fix: str):
    """Hold the OS lock on `lock_file` while the body runs; when another process holds it,
    FracdataError `<target>: another <who> is writing here (pid P on HOST since T); <fix>`."""
    import fcntl

    lock_file = Path(lock_file)
    try:
        lock_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(lock_file, os.O_RDWR | os.O_CREAT, 0o644)
    except (OSError, ValueError) as e:
        raise FracdataError(f"{lock_file}: cannot create the lock file ({getattr(e, 'strerror', None) or e})") from None
    with os.fdopen(fd, "r+", encoding="utf-8", errors="replace") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FracdataError(f"{target}: another {who} is writing here ({_holder(f)}); {fix}") from None
        f.seek(0)
        f.truncate()
        f.write(json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}) + "\n")
        f.flush()
        yield  # the lock goes with the process (or this block): never a stale one


def _holder(f) -> str:
    f.seek(0)
    try:
        h = json.loads(f.read())
        return f"pid {h['pid']} on {h['host']} since {h['since']}"
    except (ValueError, KeyError, TypeError):  # the holder is between its lock and its write
        return "holder not yet recorded"


@contextmanager
def sqlite_errors(path: str | Path, what: str):
    """sqlite3 and OS errors on a cache file -> one FracdataError naming it and the way out."""
    import sqlite3

    try:
        yield
    except (sqlite3.Error, OSError, ValueError) as e:
        raise FracdataError(f"{path}: not a usable {what} ({type(e).__name__}: {e}); move it aside to start a "
                            "new one (its answers would then be asked, and paid, again)") from None


def real_path(path: Path) -> Path | None:
    """Where a path leads after symlinks; None for a symlink loop or a name the OS refuses (a NUL)."""
    try:
        return path.resolve()
    except (OSError, RuntimeError, ValueError):  # Python 3.11 raises RuntimeError("Symlink loop ...")
        return None


def resolve_image(root: Path, rel: str) -> tuple[Path | None, str, str]:
    """(path, "", "") or (None, reason, detail) for an image path relative to `root`."""
    if os.path.isabs(rel) or not os.path.normpath(os.path.join(root, rel)).startswith(str(root) + os.sep):
        return None, "path_traversal", f"image path {rel!r} leaves {root}"
    path = root / rel
    real = real_path(path)
    if real is None:
        return None, "missing_image", f"{path!r} cannot be resolved (a symlink loop, or a NUL in the name)"
    if not real.is_relative_to(root.resolve()):
        return None, "symlink_outside_tree", f"{rel!r} is a symlink to {real}, outside {root}"
    if not real.is_file():  # a folder, a FIFO (it would block the decoder), a socket, a device
        return None, "missing_image", f"{path} does not exist" if not real.exists() else f"{path} is not a regular file"
    return path, "", ""
