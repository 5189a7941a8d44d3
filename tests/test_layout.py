"""The tree matches its description: the design card's top level, README's Layout section, the
paths docs and docstrings name, and tests that share helpers only through tests/support/."""

from __future__ import annotations

import ast
import glob
import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()

# The design card's top level (plus docs/ and .ci/); anything else tracked there is a new
# top-level concept and needs the card changed first.
TOP_LEVEL = {"pyproject.toml", "README.md", "fracdata", "llamafactory_configs", "benchmarks", "tests", "Makefile",
             "docs", ".ci", ".gitignore"}


def _tracked() -> list[str]:
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True, check=True).stdout
        return [f for f in out.splitlines() if (ROOT / f).exists()]
    except (OSError, subprocess.CalledProcessError):  # not a checkout: every file but generated ones
        return [str(p.relative_to(ROOT)) for p in ROOT.iterdir()]


def test_the_top_level_is_the_design_cards():
    top = {f.split("/")[0] for f in _tracked()}
    assert top - TOP_LEVEL == set(), "new top-level entries"
    assert {"pyproject.toml", "README.md", "fracdata", "llamafactory_configs", "benchmarks", "tests", "Makefile"} <= top


def _test_imports(source: str, filename: str = "<string>") -> list[tuple[int, str]]:
    """(line, name) for each import of a test module or conftest, in either style: `from test_mine
    import x` (the rootdir on sys.path), `tests.test_mine`, or relative `from . import test_x`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            names = [node.module or ""] + ([a.name for a in node.names] if not node.module else [])
        else:
            continue
        found += [(node.lineno, n) for n in names if any(part.startswith("test_") or part == "conftest"
                                                          for part in n.split("."))]
    return found


def test_no_test_file_imports_another_test_file():
    """Shared helpers live in tests/support/; a test file is never a library for another."""
    found = [f"{path.relative_to(ROOT)}:{line}: imports {name}"
             for path in sorted((ROOT / "tests").rglob("*.py"))
             for line, name in _test_imports(path.read_text(), str(path))]
    assert found == [], "move the shared code to tests/support/:\n" + "\n".join(found)


def test_the_check_for_test_imports_sees_every_import_style():
    assert _test_imports("from test_mine import write_article\n") == [(1, "test_mine")]
    assert _test_imports("import os\nimport tests.test_label as t\n") == [(2, "tests.test_label")]
    assert _test_imports("from . import test_x\n") == [(1, "test_x")]
    assert _test_imports("from tests.support.jats_kit import write_article\nimport pytest\n") == []


def _layout_block() -> list[str]:
    section = README.split("\n## Layout\n", 1)[1].split("\n## ", 1)[0]
    return section.split("```", 2)[1].strip("\n").splitlines()


def test_readme_layout_names_only_paths_that_exist():
    parent = ""
    missing = []
    for line in _layout_block():
        names = re.split(r"\s{2,}", line.strip())[0]  # the names, then two or more spaces, then what they are
        if "generated" in line:  # data/ models/ runs/ reports/: made by the commands, git-ignored
            continue
        indented = line.startswith(" ")
        for name in names.split():
            path = (parent + name) if indented else name
            if not (ROOT / path).exists():
                missing.append(path)
        if not indented:
            parent = names.split()[0]
    assert missing == []


def test_readme_layout_names_every_module_and_stage_of_fracdata():
    """A new stage package or core module shows up in README's Layout, or this fails."""
    block = " ".join(_layout_block())
    names = set(block.split())
    pkg = ROOT / "fracdata"
    have = {p.name + "/" for p in pkg.iterdir() if (p / "__init__.py").is_file()}
    have |= {p.name for p in pkg.glob("*.py") if p.name not in ("__init__.py", "__main__.py")}
    assert sorted(have - names) == []


PATH = re.compile(r"(?<![\w/.$-])((?:fracdata|fracbench|benchmarks|llamafactory_configs|tests|docs)/[\w./*<>{}-]*[\w*>}/])")


def _named_paths(text: str):
    for m in PATH.finditer(text):
        yield m.group(1).rstrip(".")


def _exists(path: str) -> bool:
    path = path.replace("fracdata/llamafactory_configs", "llamafactory_configs")  # the wheel's name for it
    if path.startswith("fracbench/"):
        path = "benchmarks/" + path
    if re.search(r"[*<>{}]", path):  # a pattern: `runs/demo/<variant>`, `tasks/*.yaml`
        return bool(glob.glob(str(ROOT / re.sub(r"<[^>]*>|\{[^}]*\}", "*", path))))
    return (ROOT / path).exists()


def test_docs_readme_makefile_and_docstrings_name_only_paths_that_exist():
    """After a move, a doc still naming the old path (the build's old `sources.py` at the top of the
    package, fracbench's tasks folder outside its package, ...) fails here."""
    files = ["README.md", "Makefile", ".ci/run", "pyproject.toml", *sorted(glob.glob("docs/*.md", root_dir=ROOT))]
    for folder in ("fracdata", "benchmarks", "llamafactory_configs", "tests"):
        files += [str(p.relative_to(ROOT)) for p in sorted((ROOT / folder).rglob("*"))
                  if p.is_file() and p.suffix in (".py", ".md", ".yaml", ".j2", ".json", ".sh", ".html")]
    missing = []
    for f in files:
        for n, line in enumerate((ROOT / f).read_text().splitlines(), 1):
            missing += [f"{f}:{n}: {p}" for p in _named_paths(line) if not _exists(p)]
    assert missing == [], "\n".join(missing)


def test_docs_name_only_modules_that_exist():
    """A bare `name.py` in docs/ or README is some file of the tree (`sources.py`, `render.py` are gone)."""
    basenames = {p.name for folder in ("fracdata", "benchmarks", "tests") for p in (ROOT / folder).rglob("*.py")}
    missing = []
    for f in ["README.md", *sorted(glob.glob("docs/*.md", root_dir=ROOT))]:
        for n, line in enumerate((ROOT / f).read_text().splitlines(), 1):
            missing += [f"{f}:{n}: {m}" for m in re.findall(r"(?<![\w/.])([A-Za-z_][\w]*\.py)\b", line) if m not in basenames]
    assert missing == [], "\n".join(missing)
