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

Outputs (`check_outputs`, every command that writes, before it takes a lock or writes a byte): an
output that is, or links to, one of the command's inputs (the same file, through a symlink or a
hard link: the same inode) is refused, so `label --gold g.jsonl --out g.jsonl` leaves g.jsonl as
it was; an output below a regular file says so; an existing output that is not this command's
own kind of file (`Output.own`: a JSONL whose first record is not the command's record, a
folder without the command's marker) is refused unless the user passes the command's
overwrite flag. A command's own earlier output always passes: resuming is never refused.

YAML: a file that must hold a mapping; every failure is one line naming the file: unreadable,
not UTF-8, not YAML, nested deeper than Python can read, aliases that expand past MAX_VALUES
(a "billion laughs" file), or a string holding a NUL or a lone surrogate (fracdata/untrusted.py).
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

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


@dataclass(frozen=True)
class Output:
    """One path a command writes: `kind` names it in messages ("labels file"); `own(path)` says why
    an existing one is not this command's kind of file (None: it is, or it may be replaced)."""
    path: Path
    kind: str
    own: Callable[[Path], str | None] | None = None


def check_outputs(outputs: Iterable[Output], inputs: Iterable[str | Path | None], *, overwrite: bool = False,
                  flag: str = "--overwrite", replaced_whole: bool = False) -> None:
    """Refuse, in one FracdataError line, an output that is an input, lies below a file, or is
    someone else's file (see the module doc). `replaced_whole`: the outputs are folders the command
    replaces as a whole (build), so an input inside one is refused too."""
    ins = [Path(i) for i in inputs if i is not None]
    for o in outputs:
        path = Path(o.path)
        _below_a_file(path)
        for i in ins:
            how = _same(path, i)
            if how:
                raise FracdataError(f"{path}: {how} the input {i}: writing the {o.kind} there would destroy that "
                                    "input; choose another output path")
            if replaced_whole and _inside(i, path):
                raise FracdataError(f"{path}: the input {i} is inside it, and the {o.kind} is replaced as a whole; "
                                    "move the input out or choose another output path")
        if o.own is not None and not overwrite and path.exists():
            why = o.own(path)
            if why:
                raise FracdataError(f"{path}: exists and is not a {o.kind} ({why}); pass {flag} to replace it, "
                                    "or choose another output path")


def _below_a_file(path: Path) -> None:
    for parent in path.parents:
        if parent.is_dir():
            return
        if parent.exists():  # a symlink loop or a dangling link is left to the write, which names it
            raise FracdataError(f"{path}: {parent} is a file, not a folder; choose another output path")


def _same(out: Path, inp: Path) -> str | None:
    """How `out` is `inp` ("is", "is a symlink to", "is a hard link to"), or None."""
    try:
        a, b = os.stat(out), os.stat(inp)
    except (OSError, ValueError):  # either does not exist (or cannot be stat'ed): not the same file
        return None
    if (a.st_dev, a.st_ino) != (b.st_dev, b.st_ino):
        return None
    if os.path.abspath(out) == os.path.abspath(inp):
        return "is"
    if out.is_symlink():
        return "is a symlink to"
    if os.path.realpath(out) == os.path.realpath(inp):
        return "is, through a symlinked folder,"
    return "is a hard link to"


def _inside(inp: Path, folder: Path) -> bool:
    try:
        return Path(os.path.realpath(inp)).is_relative_to(os.path.realpath(folder))
    except (OSError, ValueError):
        return False


def jsonl_of(model, what: str) -> Callable[[Path], str | None]:
    """`Output.own` for a JSONL file of `model` records: its first record must be one (an empty
    file passes); what = the record's name in the message ("a LabelRecord"). Lines are read as
    records.json_lines reads them (bytes split at "\n", a leading byte-order mark skipped)."""
    def own(path: Path) -> str | None:
        from pydantic import ValidationError

        from fracdata.untrusted import BOM, loads

        if not path.is_file():
            return "not a regular file"
        try:
            with open(path, "rb") as f:
                for lineno, raw in enumerate(f, 1):
                    raw = raw.removeprefix(BOM) if lineno == 1 else raw
                    if not raw.strip():
                        continue
                    try:
                        model.model_validate(loads(raw.decode("utf-8")))
                    except (ValueError, ValidationError):  # not UTF-8, not JSON, not the record
                        return f"line {lineno} is not {what}"
                    return None
        except OSError as e:
            return f"unreadable: {e.strerror or e}"
        return None
    return own


def sqlite_file(path: Path) -> str | None:
    """`Output.own` for a SQLite cache: empty, or starting with SQLite's header."""
    try:
        with open(path, "rb") as f:
            head = f.read(16)
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    return None if head in (b"", b"SQLite format 3\x00") else "not a SQLite file"


def folder_with(*markers: str) -> Callable[[Path], str | None]:
    """`Output.own` for an output folder: empty, or holding one of `markers` (what the command
    leaves in every folder it writes)."""
    def own(path: Path) -> str | None:
        if not path.is_dir():
            return "not a folder"
        if any((path / m).exists() for m in markers) or not any(path.iterdir()):
            return None
        return f"it holds files and no {' or '.join(markers)}"
    return own
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


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def expand_env(value: str, where: str) -> str:
    """`${VAR}` / `${VAR:-default}` from the environment (model entries' paths and URLs); an unset VAR
    without a default is an error naming `where`."""
    def sub(m):
        if m.group(1) in os.environ:
            return os.environ[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise FracdataError(f"{where}: ${{{m.group(1)}}} is not set: export {m.group(1)}=... or write ${{{m.group(1)}:-default}}")
    return _VAR.sub(sub, value)


@contextmanager
def replaced_folder(out: Path):
    """An empty folder beside `out` to build in; when the block ends it takes `out`'s place in two
    renames (`out` is never half-written, only briefly absent), and when the block fails it is removed."""
    import shutil
    import tempfile

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        yield tmp
        tmp.chmod(0o755)  # mkdtemp makes it private; what is built here is meant to be shared
        old = out.with_name(f".{out.name}.old-{tmp.name}") if out.exists() else None
        if old:
            out.rename(old)
        tmp.rename(out)
        if old:
            shutil.rmtree(old)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
