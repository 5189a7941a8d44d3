"""Imports run one way (docs/layout.md): core <- stages in pipeline order <- use <- demo; fracdata
never imports fracbench (the demo aside), `benchmarks` or `tests`; no module imports its own
package's `__init__.py` (fracdata's own, which holds only `__version__`, aside); every `__init__.py` is a face of at most 60 lines; no import cycles.

The order is read from the ```imports block of docs/layout.md, so it is written once.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = "fracdata"  # planted files below are built from it, so no literal names a path that does not exist
MAX_INIT_LINES = 60


def read_order(text: str) -> tuple[list[set[str]], set[str]]:
    """The layers below the core, in order, and the core's modules, from the ```imports block."""
    block = re.search(r"```imports\n(.*?)```", text, re.S)
    assert block, "docs/layout.md has no ```imports block"
    layers, core = [], set()
    for line in block.group(1).splitlines():
        kind, _, names = line.partition(":")
        if kind.strip() == "core":
            core = set(names.split())
        elif names.strip():
            layers.append(set(names.split()))
    return layers, core


def _modules(pkg: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py under the package folder."""
    out = {}
    for f in sorted(pkg.rglob("*.py")):
        parts = list(f.relative_to(pkg.parent).with_suffix("").parts)
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = f
    return out


def _imports(f: Path, name: str, modules: dict[str, Path]):
    """(line, imported module, names taken from a package's __init__) for each import in f,
    inside functions too; `from pkg import sub` resolves to the submodule when one exists."""
    is_pkg = f.name == "__init__.py"
    for node in ast.walk(ast.parse(f.read_text(), str(f))):
        if isinstance(node, ast.Import):
            for a in node.names:
                yield node.lineno, a.name, []
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against this module's package
                pkg = name.split(".") if is_pkg else name.split(".")[:-1]
                pkg = pkg[:len(pkg) - node.level + 1]
                base = ".".join(pkg + ([base] if base else []))
            from_init = []
            for a in node.names:
                sub = f"{base}.{a.name}"
                if sub in modules:
                    yield node.lineno, sub, []
                else:
                    from_init.append(a.name)
            if from_init:
                yield node.lineno, base, from_init


def _unit(module: str) -> str:
    """The layer unit of a fracdata module: its stage package, or its core module's name."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def check(root: Path) -> list[str]:
    """Every problem in root/fracdata against root/docs/layout.md, one line each."""
    layers, core = read_order((root / "docs" / "layout.md").read_text())
    level = {u: 0 for u in core}
    for i, layer in enumerate(layers, 1):
        level.update({u: i for u in layer})
    top = max(level.values())
    modules = _modules(root / "fracdata")
    problems, graph = [], {m: set() for m in modules}
    for m, f in modules.items():
        rel = f.relative_to(root)
        u = _unit(m)
        if u not in level:
            problems.append(f"{rel}: fracdata/{u} is not placed in docs/layout.md's order: give it a line there")
            continue
        if f.name == "__init__.py" and m != "fracdata":
            n = len(f.read_text().splitlines())
            if n > MAX_INIT_LINES:
                problems.append(f"{rel}: {n} lines; an __init__.py is a face (command line, re-exports) of at most "
                                f"{MAX_INIT_LINES}: move the logic into named modules")
        for line, target, from_init in _imports(f, m, modules):
            head = target.split(".")[0]
            if head in ("fracbench", "benchmarks", "tests") and not (head == "fracbench" and level[u] == top):
                problems.append(f"{rel}:{line}: imports {target}: fracdata never imports {head} (only the demo may "
                                "start fracbench); move what both need into fracdata")
                continue
            if head != "fracdata":
                continue
            if target in modules:
                graph[m].add(target)
            t = _unit(target)
            own_pkg = m.rsplit(".", 1)[0] if f.name != "__init__.py" else m
            # fracdata/__init__.py itself holds only __version__; a stage package's is a face
            if from_init and target == own_pkg and f.name != "__init__.py" and own_pkg != "fracdata":
                problems.append(f"{rel}:{line}: imports {', '.join(from_init)} from its own package's __init__.py "
                                f"({target}): import it from the module that defines it")
            if t == u or t not in level:
                continue
            if level[t] > level[u] or (level[t] == level[u] and level[u] > 0):
                where = "a later line" if level[t] > level[u] else "the same line"
                problems.append(f"{rel}:{line}: {u} imports {t} ({target}), which stands on {where} of docs/layout.md's "
                                f"order ({' -> '.join(sorted(layers[level[u] - 1]))} may import only the core and the "
                                "lines above it): move what both need up, or the importer down")
    problems += [f"import cycle: {' -> '.join(c)}" for c in _cycles(graph)]
    return problems


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One cycle per strongly connected component with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp) + [sorted(comp)[0]])
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_fracdata_imports_run_one_way():
    problems = check(ROOT)
    assert problems == [], "\n".join(problems)


def _plant(tmp_path: Path, files: dict[str, str]) -> Path:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "layout.md").write_text((ROOT / "docs" / "layout.md").read_text())
    for rel, text in files.items():
        p = tmp_path / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    for d in ("fracdata", f"{PKG}/harvest", f"{PKG}/train", f"{PKG}/mine", f"{PKG}/demo"):
        (tmp_path / d).mkdir(parents=True, exist_ok=True)
        (tmp_path / d / "__init__.py").touch()
    return tmp_path


def test_the_check_fails_on_a_planted_upward_import(tmp_path):
    root = _plant(tmp_path, {f"{PKG}/harvest/fetch.py": "import os\n\n\ndef f():\n    from fracdata.train.plan import plan\n",
                             f"{PKG}/train/plan.py": "def plan():\n    pass\n"})
    assert check(root) == [
        f"{PKG}/harvest/fetch.py:5: harvest imports train (fracdata.train.plan), which stands on a later line of "
        "docs/layout.md's order (harvest may import only the core and the lines above it): move what both need up, "
        "or the importer down"]


def test_the_check_fails_on_fracbench_a_cycle_an_own_init_import_and_a_fat_init(tmp_path):
    root = _plant(tmp_path, {
        f"{PKG}/mine/a.py": "from fracdata.mine import b\nfrom fracbench.metrics import score\n",
        f"{PKG}/mine/b.py": "from fracdata.mine.a import x\nfrom fracdata.mine import helper\n",
        f"{PKG}/train/__init__.py": "x = 1\n" * 61,
        f"{PKG}/demo/run.py": "from fracbench.metrics import score\nfrom fracdata.train import x\n",
        f"{PKG}/unplaced/__init__.py": "",
    })
    assert sorted(check(root)) == sorted([
        f"{PKG}/mine/a.py:2: imports fracbench.metrics: fracdata never imports fracbench (only the demo may start "
        "fracbench); move what both need into fracdata",
        f"{PKG}/mine/b.py:2: imports helper from its own package's __init__.py (fracdata.mine): import it from the "
        "module that defines it",
        f"{PKG}/train/__init__.py: 61 lines; an __init__.py is a face (command line, re-exports) of at most 60: "
        "move the logic into named modules",
        f"{PKG}/unplaced/__init__.py: {PKG}/unplaced is not placed in docs/layout.md's order: give it a line there",
        "import cycle: fracdata.mine.a -> fracdata.mine.b -> fracdata.mine.a",
    ])


def test_the_order_block_lists_each_package_once_and_every_package_of_fracdata():
    layers, core = read_order((ROOT / "docs" / "layout.md").read_text())
    listed = [u for layer in layers for u in layer] + sorted(core)
    assert len(listed) == len(set(listed))
    pkg = ROOT / "fracdata"
    have = {p.name for p in pkg.iterdir() if (p / "__init__.py").is_file()} | {p.stem for p in pkg.glob("*.py")}
    assert sorted(have - set(listed)) == [] and sorted(set(listed) - have) == []
    assert [sorted(layer) for layer in layers[:5]] == [["harvest"], ["mine"], ["label"], ["dataset"], ["train"]]
