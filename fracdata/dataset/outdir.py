"""The builder's output folder: input fingerprint, "nothing changed" check, atomic replacement.

A build is written into a sibling temporary folder `.OUT.tmp-<pid>-*` and swapped into place
with one rename (renameat2 RENAME_EXCHANGE where the kernel has it, so OUT always names a
complete build; else two renames). A killed build leaves only its temporary folder, which the
next build removes once its pid is gone. OUT itself is never written in place. Beside OUT:
`.OUT.lock` (the one-build-at-a-time lock) and, after a build in which no training image
survived, `OUT.rejects.jsonl` (removed by the next build that succeeds).

The fingerprint reads its inputs as the stage does: manifest and gold files through
records.read_jsonl (lines split at "\n" only, so a caption holding U+2028 or U+0085 cannot hide
the records after it) and image paths through inputs.resolve_image; a manual folder through
inputs.walk_manual. Every file the stage reads is hashed by content.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import os
import shutil
import tempfile
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.records import sha256_file

# Code that shapes the output: every module of this package plus the shared core it uses; the
# hash goes into the input hash and build.json.
CORE_MODULES = ("answer.py", "images.py", "records.py", "stretch.py", "taxonomy.py", "untrusted.py")


def code_sha256() -> str:
    h = hashlib.sha256()
    package = resources.files("fracdata")
    stage = sorted(f.name for f in package.joinpath("dataset").iterdir() if f.name.endswith(".py"))
    for rel in [*CORE_MODULES, *(f"dataset/{name}" for name in stage)]:
        h.update(rel.encode() + b"\0" + package.joinpath(rel).read_bytes())
    return h.hexdigest()


def lock_path(out: Path) -> Path:
    return out.parent / f".{out.name}.lock"


def failed_rejects_path(out: Path) -> Path:
    return out.parent / f"{out.name}.rejects.jsonl"


def _image_paths(listing: Path, role: str) -> list[Path]:
    """The image files a manifest/gold file makes the stage decode, read as the stage reads them."""
    from fracdata.files import resolve_image
    from fracdata.records import GoldRecord, ManifestRecord, Reject, read_jsonl

    root = Path(os.path.abspath(listing.parent))
    model = GoldRecord if role == "gold" else ManifestRecord
    paths = []
    for _, rec in read_jsonl(listing, model, "build"):
        if not isinstance(rec, Reject):
            path, _, _ = resolve_image(root, rec.image)
            if path is not None:
                paths.append(path)
    return paths


def _content(path: Path) -> str:
    """sha256 of a file, or what kept it from being read (the stage rejects it for the same)."""
    try:
        return sha256_file(path)
    except OSError as e:
        return f"unreadable: {e.strerror or type(e).__name__}"


def fingerprint(cfg: dict, inputs: list[tuple[str, Path]], workers: int) -> tuple[str, list[dict]]:
    """(input hash, input description) from the config, the input files and every image in them.

    inputs: (role, path) with role manifest | labels | manual | gold. Images are hashed by
    content (not mtime), so the hash is the same on any clone with the same data.
    """
    from fracdata.dataset.inputs import walk_manual

    described, jobs = [], []
    for role, path in inputs:
        root = Path(os.path.abspath(path if role == "manual" else path.parent))
        if role == "manual":
            _, files = walk_manual(root, meta=True)
            described.append({"role": role, "path": str(path)})
        else:
            if not path.is_file():
                raise FracdataError(f"{path}: no such {role} file")
            files = _image_paths(path, role) if role in ("manifest", "gold") else []
            described.append({"role": role, "path": str(path), "sha256": sha256_file(path)})
        jobs.append((root, files))
    with ThreadPoolExecutor(max(1, workers)) as ex:  # hashlib releases the GIL on big buffers
        for d, (root, files) in zip(described, jobs, strict=True):
            if files:
                listing = "".join(f"{p.relative_to(root)}\t{s}\n" for p, s in zip(files, ex.map(_content, files), strict=True))
                d["files"] = len(files)
                d["files_sha256"] = hashlib.sha256(listing.encode("utf-8", "surrogatepass")).hexdigest()
    blob = json.dumps({"config": cfg, "inputs": described}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest(), described


def up_to_date(out: Path, input_hash: str) -> bool:
    """OUT holds a complete build of exactly these inputs (its JSON files unchanged)."""
    try:
        summary = json.loads((out / "build.json").read_text())
    except (OSError, ValueError):
        return False
    if summary.get("input_hash") != input_hash:
        return False
    files = summary.get("files", {})
    if any(not (out / n).is_file() or sha256_file(out / n) != s for n, s in files.items()):
        return False
    images = out / "images"
    return images.is_dir() and sum(1 for _ in images.iterdir()) == summary.get("images")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def clean_stale(out: Path) -> list[Path]:
    """Remove the temp folders of killed builds of OUT (their pid is gone); return them."""
    removed = []
    for stale in sorted(out.parent.glob(f".{out.name}.tmp-*")):
        try:
            pid = int(stale.name.removeprefix(f".{out.name}.tmp-").split("-")[0])
        except ValueError:
            continue
        if pid != os.getpid() and not _pid_alive(pid):
            shutil.rmtree(stale, ignore_errors=True)
            removed.append(stale)
    return removed


def prepare(out: Path) -> Path:
    """Check OUT may be replaced and return a fresh temp folder beside it."""
    if out.exists() and not out.is_dir():
        raise FracdataError(f"{out}: exists and is not a folder; choose another --out")
    if out.is_dir() and not (out / "build.json").is_file() and any(out.iterdir()):
        raise FracdataError(f"{out}: exists and is not a fracdata build (no build.json); remove it or choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.tmp-{os.getpid()}-"))


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two paths (Linux renameat2 RENAME_EXCHANGE); False when unsupported."""
    fn = getattr(ctypes.CDLL(None, use_errno=True), "renameat2", None)
    if fn is None:
        return False
    at_fdcwd, rename_exchange = -100, 2
    return fn(at_fdcwd, os.fsencode(str(a)), at_fdcwd, os.fsencode(str(b)), rename_exchange) == 0


def swap_into_place(tmp: Path, out: Path) -> None:
    os.chmod(tmp, 0o755)  # mkdtemp makes it 0700
    if not out.exists():
        os.rename(tmp, out)
    elif _exchange(tmp, out):
        shutil.rmtree(tmp)  # now holds the previous build
    else:
        old = tmp.with_name(tmp.name + "-old")
        os.rename(out, old)
        os.rename(tmp, out)
        shutil.rmtree(old)
