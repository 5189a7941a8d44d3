"""Write a file so that its final name only ever holds complete contents.

The data goes to a hidden temporary file beside the target (`.<name>.<pid>.<thread>.tmp`,
so concurrent writers of the same name never share one), then `os.replace` puts it in
place. A process killed mid-write leaves only the temporary file, never a truncated
target. `durable=True` also fsyncs before the rename (state a crash must not lose).
"""

from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from pathlib import Path


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
