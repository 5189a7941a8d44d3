"""Files every stage writes or reads the same way: atomic writes and YAML mappings.

Atomic writes: a file's final name only ever holds complete contents. The data goes to a hidden temporary file beside the target (`.<name>.<pid>.<thread>.tmp`,
so concurrent writers of the same name never share one), then `os.replace` puts it in
place. A process killed mid-write leaves only the temporary file, never a truncated
target. `durable=True` also fsyncs before the rename (state a crash must not lose).

YAML: a file that must hold a mapping; every failure is one line naming the file.
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path

from fracdata.errors import FracdataError


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

    try:
        data = yaml.safe_load(Path(path).read_text() if text is None else text)
    except OSError as e:
        raise FracdataError(f"{path}: cannot read the {kind} file ({e.strerror or e})") from None
    except yaml.YAMLError as e:
        raise FracdataError(f"{path}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise FracdataError(f"{path}: a {kind} file must be a YAML mapping")
    return data
