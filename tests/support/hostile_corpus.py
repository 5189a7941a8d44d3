"""Hostile inputs for tests/test_hostile_io.py, made in the test: the classes issue 17 names.

Text: a JSON `\\ud800` escape (valid JSON, a lone surrogate once read: UTF-8 cannot write it),
bytes that are not UTF-8, a NUL. Structure: JSON nested 100,000 deep, YAML nested 20,000 deep,
a YAML "billion laughs" (9 levels of 9 aliases: 3 x 10^8 values from ~500 bytes). Files: a
symlink loop, a damaged SQLite file, a folder the process cannot write.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from fracdata.untrusted import text_problem

SURROGATE = "\\ud800"  # as JSON text: json.loads gives the lone surrogate U+D800
NOT_UTF8 = b"\xff\xfe caf\xe9"


def deep_json(n: int = 100_000) -> str:
    return "[" * n + "]" * n


def deep_yaml(n: int = 20_000) -> str:
    return "a: " + "[" * n + "]" * n + "\n"


def alias_bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 9):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 9) + "]")
    return "\n".join(lines) + "\n"


# hostile YAML files, by what is wrong (text or bytes)
YAML_KINDS: dict[str, str | bytes] = {
    "non_utf8": b"name: " + NOT_UTF8 + b"\n",
    "deep": deep_yaml(),
    "alias_bomb": alias_bomb(),
    "nul": 'name: "a\\0b"\n',
    "lone_surrogate": 'name: "a\\ud800b"\n',
    "not_a_mapping": "- just\n- a list\n",
}


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (path.write_bytes if isinstance(data, bytes) else path.write_text)(data)
    return path


def write_lines(path: Path, lines: list[str | bytes]) -> Path:
    """A JSONL file of raw lines (str as UTF-8), exactly as given."""
    return write(path, b"".join((ln if isinstance(ln, bytes) else ln.encode()) + b"\n" for ln in lines))


def symlink_loop(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.symlink_to(path)
    return path


def damaged_sqlite(path: Path) -> Path:
    return write(path, b"SQLite format 3\x00" + b"\x13\x37" * 2000)


def unwritable_dir(tmp: Path) -> Path:
    """A folder this process cannot create files in: a read-only one, or (root ignores permission
    bits) a path under /sys, which refuses new entries to root too."""
    if os.geteuid() != 0:
        d = tmp / "read-only"
        d.mkdir()
        d.chmod(0o555)
        return d
    return Path("/sys/fracdata-hostile-io-test")


def assert_outputs_readable(folder: Path, skip=(".sqlite", ".png", ".lock", "-wal", "-shm")) -> int:
    """Every output file under `folder` is strict UTF-8, every JSON(L) one parses and holds no text
    that could not be written again; returns how many files were checked."""
    n = 0
    for p in sorted(folder.rglob("*")):
        if not p.is_file() or p.name.endswith(skip) or p.suffix in (".tmp",):
            continue
        text = p.read_bytes().decode("utf-8")  # raises on anything else
        docs = [line for line in text.split("\n") if line.strip()] if p.suffix == ".jsonl" else \
            [text] if p.suffix == ".json" else []
        for doc in docs:
            assert text_problem(json.loads(doc)) is None, p
        n += 1
    assert not list(folder.rglob(".*.tmp")), "a temporary file of an atomic write was left behind"
    return n


def color_gold(folder: Path, n: int) -> tuple[Path, list[str], list[str]]:
    """(gold file, ids, a piece of each image's base64 as an endpoint receives it): n small distinct PNGs."""
    from PIL import Image

    from fracdata.inference.endpoint import data_url
    from fracdata.images import image_id
    from fracdata.records import GoldRecord, dump_jsonl

    (folder / "img").mkdir(parents=True)
    recs, markers = [], []
    for i in range(n):
        p = folder / "img" / f"{i}.png"
        Image.new("RGB", (48 + 8 * i, 40), (25 * i, 255 - 20 * i, 9 * i)).save(p)
        recs.append(GoldRecord(id=image_id(p), image=f"img/{i}.png", features=["gas_pore"]))
        url = data_url(Image.open(p))
        markers.append(url[len(url) // 2: len(url) // 2 + 40])
    dump_jsonl(recs, folder / "gold.jsonl")
    return folder / "gold.jsonl", [r.id for r in recs], markers


def api_entry(folder: Path, name: str, base_url: str, key_env: str | None) -> Path:
    return write(folder / f"{name}.yaml",
                 f"name: {name}\nkind: openai-compatible\nbase_url: {base_url}\nmodel: gpt-5.5\nprompt: taxonomy\n"
                 + (f"api_key_env: {key_env}\n" if key_env else "") + "concurrency: 3\nmax_retries: 0\ntimeout_s: 20\n"
                 "decoding: {max_completion_tokens: 300}\n")
