"""One reject vocabulary: the reasons the code writes, fracdata.records.REASONS and the docs agree."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from fracdata.records import REASONS, Reject

ROOT = Path(__file__).resolve().parents[1]
CODE = sorted([*ROOT.joinpath("fracdata").rglob("*.py"), *ROOT.joinpath("benchmarks").rglob("*.py")])
# where a call takes its reason: positional index by the called name (a method call: `.name`)
REASON_ARG = {"ImageReject": 0, "SourceError": 0, "AnswerError": 0, "FigureReject": 1, ".fail": 0, "_fail": 2,
              "_reject": 1, "failure": 2, ".reject": 2, "reject": 0, "rejected": 1}
CODE_LIKE = re.compile(r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$")


def _strings(node) -> set[str]:
    """Snake-case string literals in an expression, except subscript keys (`entry["reason"]` reads a reason)."""
    keys = {id(n.slice) for n in ast.walk(node) if isinstance(n, ast.Subscript)}
    return {n.value for n in ast.walk(node) if isinstance(n, ast.Constant) and isinstance(n.value, str)
            and CODE_LIKE.match(n.value) and id(n) not in keys}


def _call_name(call: ast.Call) -> str:
    f = call.func
    return f".{f.attr}" if isinstance(f, ast.Attribute) else getattr(f, "id", "")


def reasons_written(tree) -> set[str]:
    """String literals in reason position: reason=..., a reject/fail call's reason argument, `reason = ...`."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            for kw in node.keywords:
                if kw.arg == "reason":
                    out |= _strings(kw.value)
            k = REASON_ARG.get(_call_name(node))
            if k is not None and len(node.args) > k:
                out |= _strings(node.args[k])
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id == "reason":
                    out |= _strings(node.value)
                elif isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                    for t, v in zip(target.elts, node.value.elts):
                        if isinstance(t, ast.Name) and t.id == "reason":
                            out |= _strings(v)
    return out


def literals_outside_the_table(tree) -> set[str]:
    """Every snake_case string literal of a module except those of the REASONS table itself."""
    skip = {id(n) for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
            and "REASONS" in {getattr(t, "id", None) for t in (node.targets if isinstance(node, ast.Assign) else [node.target])}
            for n in ast.walk(node)}
    return {n.value for n in ast.walk(tree) if id(n) not in skip and isinstance(n, ast.Constant)
            and isinstance(n.value, str) and CODE_LIKE.match(n.value)}


def documented(path: Path, heading: str, first_cell: bool = True) -> set[str]:
    """The `code` names in the table under `heading` of a docs page (its first cells, or all)."""
    text = path.read_text()
    section = text[text.index(heading) + len(heading):]
    section = section[:section.find("\n## ")] if "\n## " in section else section
    rows = [line for line in section.splitlines() if line.startswith("|")]
    pattern = r"^\| `([a-z_0-9]+)`" if first_cell else r"`([a-z_0-9]+)`"
    return {m for line in rows for m in re.findall(pattern, line)}


def test_every_reason_the_code_writes_is_declared():
    written = {}
    for path in CODE:
        for reason in reasons_written(ast.parse(path.read_text(), str(path))):
            written.setdefault(reason, str(path.relative_to(ROOT)))
    undeclared = {r: f for r, f in written.items() if r not in REASONS}
    assert not undeclared, f"reasons used but not in fracdata.records.REASONS (nor the docs): {undeclared}"
    assert len(written) >= 50  # the scan sees the stages' rejects (a scan that finds nothing proves nothing)


def test_every_declared_reason_is_used_somewhere():
    used = set()
    for path in CODE:
        used |= literals_outside_the_table(ast.parse(path.read_text(), str(path)))
    assert sorted(set(REASONS) - used) == []


def test_the_docs_list_exactly_the_declared_reasons():
    listed = documented(ROOT / "docs" / "formats.md", "## Reject reasons")
    assert sorted(listed - set(REASONS)) == [], "listed in docs/formats.md but not declared"
    assert sorted(set(REASONS) - listed) == [], "declared but not listed in docs/formats.md"
    per_input = documented(ROOT / "docs" / "build.md", "## Reject reasons", first_cell=False)
    assert per_input and per_input <= set(REASONS)


def test_the_synonyms_are_merged():
    for gone in ("image_missing", "unreadable", "image_unreadable", "file_unreadable", "image_hash_mismatch"):
        assert gone not in REASONS
        with pytest.raises(ValidationError):
            Reject(stage="build", file="x", reason=gone)
    assert {"missing_image", "unreadable_image", "id_mismatch"} <= set(REASONS)
