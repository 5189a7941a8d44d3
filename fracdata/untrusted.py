"""Text that enters from outside (JSONL records, YAML configs, model answers, API bodies), checked
once where it enters so that everything a stage keeps can be written again.

JSON may spell a character that UTF-8 cannot encode: `"\\ud800"` is valid JSON and Python reads it
as a lone surrogate, which then makes every later write of the file raise UnicodeEncodeError
(a cache that poisons every rerun). So:
  data      (a record, an answer, a config value) holding such text is refused with the reason
            `unencodable_text` (`text_problem` says where); it is never "repaired", since a
            changed caption or answer would be a different record.
  messages  (reject details, error text, file names) are escaped instead (`escape`: U+D800
            becomes the six characters `\\ud800`), since they only describe and must never stop
            a reject from being written.
  display   (a report a person reads) shows control and bidi characters escaped (`shown`,
            `table_cell`): a terminal or an editor must not act on them.
JSON nested deeper than Python's recursion limit (~1,000 levels) is a parse error (`loads`),
not a RecursionError; walking a parsed value is iterative, so depth never crashes it.
"""

from __future__ import annotations

import json

REASON = "unencodable_text"
BOM = b"\xef\xbb\xbf"  # UTF-8 byte-order mark: every JSONL/CSV reader skips it at the start of a file
# Control characters (C0 but tab and newline, DEL, C1) and the bidi overrides that reorder what a
# reader sees (U+202A-202E, U+2066-2069): a model's answer, an unmapped term or a context file may
# hold them. Shown as \x1b, \u202e, ...
_HIDDEN = {c: f"\\x{c:02x}" for c in [*range(0x20), 0x7F, *range(0x80, 0xA0)] if c not in (0x09, 0x0A)}
_HIDDEN |= {c: f"\\u{c:04x}" for c in [*range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def loads(text: str | bytes):
    """json.loads, with nesting too deep to read reported as a json.JSONDecodeError."""
    try:
        return json.loads(text)
    except RecursionError:
        doc = text if isinstance(text, str) else ""
        raise json.JSONDecodeError("nested too deeply to read (more than ~1,000 levels)", doc, 0) from None


def _bad_char(s: str) -> int | None:
    """Index of the first character UTF-8 cannot encode (a lone surrogate), else None."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError as e:
        return e.start
    return None


def text_problem(obj, where: str = "", nul: bool = False) -> str | None:
    """None when every string in `obj` (keys too, at any depth) can be written as UTF-8 (and, with
    `nul`, holds no NUL character); else one line naming the first one: `caption: character 5
    is U+D800, a lone surrogate (not encodable as UTF-8)`."""
    stack = [(where, obj)]
    while stack:
        path, value = stack.pop()
        if isinstance(value, str):
            i = _bad_char(value)
            if i is not None:
                return f"{path or 'text'}: character {i} is U+{ord(value[i]):04X}, a lone surrogate (not encodable as UTF-8)"
            if nul and "\x00" in value:
                return f"{path or 'text'}: character {value.index(chr(0))} is NUL"
        elif isinstance(value, dict):
            for k, v in reversed(list(value.items())):
                key = str(k)
                sub = f"{path}.{key}" if path else key
                if isinstance(k, str) and (_bad_char(k) is not None or (nul and "\x00" in k)):
                    return text_problem(k, f"{path or 'mapping'} key {escape(k)!r}", nul)
                stack.append((sub, v))
        elif isinstance(value, (list, tuple)):
            stack.extend((f"{path}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    return None


def escape(text: str) -> str:
    """`text` with every character UTF-8 cannot encode written as a backslash escape."""
    return text if _bad_char(text) is None else text.encode("utf-8", "backslashreplace").decode("utf-8")


def expanded_size(obj, limit: int) -> int:
    """How many values `obj` holds once YAML aliases are expanded (each shared node counted every
    time it is referenced), counted without expanding: stops as soon as it passes `limit`.

    A "billion laughs" file is a few hundred bytes whose aliases expand to 10^9 values: loading it is
    cheap (aliases are shared references), but validating or printing it would not be.
    """
    sizes: dict[int, int] = {}
    stack = [(obj, False)]
    while stack:  # depth-first, each distinct container sized once after its children
        node, children_done = stack.pop()
        if not isinstance(node, (dict, list)):
            continue
        kids = list(node.values()) if isinstance(node, dict) else node
        if children_done:
            sizes[id(node)] = min(limit + 1, 1 + sum(sizes.get(id(k), 1) for k in kids))
        elif id(node) not in sizes:
            sizes[id(node)] = 1  # a node met again inside itself (a recursive alias) counts once
            stack.append((node, True))
            stack.extend((k, False) for k in kids if isinstance(k, (dict, list)) and id(k) not in sizes)
    return sizes.get(id(obj), 1)


def shown(text: str) -> str:
    """`text` as a reader should see it: control and bidi characters escaped (ESC -> `\\x1b`),
    and anything UTF-8 cannot encode escaped (`escape`); tab and newline kept."""
    return escape(text.translate(_HIDDEN))


def table_cell(text: str) -> str:
    """`shown`, for one cell of a Markdown table: tab, newline and `|` escaped too."""
    return shown(text).replace("\t", "\\t").replace("\n", "\\n").replace("|", "\\|")
