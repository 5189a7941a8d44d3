"""What the wheel holds, and that every third-party import is declared in pyproject.toml.

The wheel is built from a copy of the packaging inputs (pyproject.toml, README.md, fracdata/,
benchmarks/fracbench/, llamafactory_configs/: tests/support/wheel.py), so the build writes
nothing into the checkout.
Installing that wheel and running it outside the checkout is tests/test_wheel_install.py (slow).
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
import zipfile
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

from tests.support.wheel import WHEEL_DIRS, build_wheel, tracked

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
FIRST_PARTY = {"fracdata", "fracbench", "tests"}

# The extra a stage needs beyond core, by path prefix. A file not listed may import core only.
STAGE_EXTRAS = {
    "fracdata/train/": "train",
    "fracdata/analyze/specialist.py": "train",  # the specialist runs a local checkpoint
    "fracdata/inference/local.py": "train",  # a local checkpoint: transformers + peft
    "fracdata/probe/": "train",  # a checkpoint's vision tower (transformers) and logistic regressions (scikit-learn)
    "fracdata/inference/probe.py": "train",  # base vs adapter logits of a local checkpoint
    "fracdata/inference/feature_probs.py": "train",  # every feature's score from that checkpoint (torch)
    "fracdata/serve/": "serve",
    "fracdata/release/": "release",
    "benchmarks/fracbench/export.py": "release",  # the gold set as Parquet (datasets)
    "fracdata/synth/paperpdf.py": "papers",  # fracdata synth --papers lays out PDFs with reportlab
}
# Imported, deliberately not declared (module -> why).
UNDECLARED: dict[str, str] = {}
# Declared, never imported by our code (distribution -> who uses it).
RUNTIME_ONLY = {"deepspeed": "llamafactory-cli, for the ZeRO-3 recipes",
                "python-multipart": "FastAPI, to parse the form of POST /analyze"}


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _req_name(req: str) -> str:
    return _norm(re.match(r"[A-Za-z0-9._-]+", req).group(0))


DECLARED = {"": {_req_name(r) for r in PYPROJECT["project"]["dependencies"]}}
DECLARED.update({extra: {_req_name(r) for r in reqs} for extra, reqs in PYPROJECT["project"]["optional-dependencies"].items()})
ALL_DECLARED = set().union(*DECLARED.values())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> zipfile.ZipFile:
    return zipfile.ZipFile(build_wheel(tmp_path_factory.mktemp("wheel"), isolated=False))


def test_the_wheel_holds_every_file_of_the_packages_and_their_data_and_nothing_else(wheel):
    want = set()
    for folder, target in WHEEL_DIRS.items():
        want |= {target + f[len(folder):] for f in tracked(folder)}
    got = {n for n in wheel.namelist() if ".dist-info/" not in n}
    assert sorted(want - got) == [], "in the source tree, not in the wheel: add the package or the data glob to pyproject.toml"
    assert sorted(got - want) == []
    # the data that issue 11 is about, by name
    for name in ("fracdata/llamafactory_configs/qwen3vl_32b_lora_sft_ds3.yaml",
                 "fracdata/llamafactory_configs/deepspeed/ds_z3_config.json",
                 "fracdata/templates/train.sbatch.j2", "fracdata/templates/harvest.sbatch.j2",
                 "fracdata/llamafactory_configs/demo/tiny_qwen3vl_full_sft.yaml",
                 "fracdata/inference/tasks/fractography-v1.yaml", "fracdata/inference/models/tiny-ft.yaml",
                 "fracdata/taxonomy.yaml", "fracdata/templates/prompt.j2"):
        assert name in got, name


def test_the_wheel_declares_the_entry_points_and_the_extras(wheel):
    meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
    text = wheel.read(meta).decode()
    assert {m for m in re.findall(r"^Provides-Extra: (\S+)$", text, re.M)} == set(PYPROJECT["project"]["optional-dependencies"])
    assert "Requires-Dist: scipy>=1.11" in text and "Requires-Dist: scikit-learn>=1.4" in text
    entry = wheel.read(next(n for n in wheel.namelist() if n.endswith(".dist-info/entry_points.txt"))).decode()
    assert "fracdata = fracdata.cli:main" in entry and "fracbench = fracbench.cli:main" in entry


def _imports(path: Path) -> list[tuple[str, int, bool]]:
    """(top-level module, line, optional) for each absolute import; optional = inside a try that
    catches ImportError (or anything wider), so the code runs without it."""
    tree = ast.parse(path.read_text(), str(path))
    guarded = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
                h.type is None or any(isinstance(t, ast.Name) and t.id in ("ImportError", "ModuleNotFoundError", "Exception", "BaseException")
                                      for t in (h.type.elts if isinstance(h.type, ast.Tuple) else [h.type]))
                for h in node.handlers):
            guarded |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        out += [(n.split(".")[0], node.lineno, id(node) in guarded) for n in names]
    return out


def _third_party(folders: list[str]) -> list[tuple[str, int, str, bool]]:
    """(file, line, top-level module, optional) for every third-party import under the folders."""
    found = []
    for folder in folders:
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = str(path.relative_to(ROOT))
            for top, line, optional in _imports(path):
                local = (path.parent / f"{top}.py").is_file()  # a script's sibling module (benchmarks/perf)
                if top not in sys.stdlib_module_names and top not in FIRST_PARTY and top != "__future__" and not local:
                    found.append((rel, line, top, optional))
    return found


DISTS = packages_distributions()


def _distributions(module: str) -> set[str]:
    return {_norm(d) for d in DISTS.get(module, [])}


def test_every_import_of_the_packages_is_declared_in_core_or_in_the_extra_of_its_stage():
    problems = []
    for rel, line, top, optional in _third_party(["fracdata", "benchmarks/fracbench"]):
        if top in UNDECLARED:
            continue
        dists = _distributions(top)
        if not dists:
            problems.append(f"{rel}:{line}: imports {top}, which is not installed here, so its distribution is unknown")
            continue
        extra = next((e for prefix, e in STAGE_EXTRAS.items() if rel.startswith(prefix)), None)
        allowed = ALL_DECLARED if optional else DECLARED[""] | DECLARED.get(extra, set())
        if not dists & allowed:
            where = "any extra" if optional else ("core" + (f" or [{extra}]" if extra else ""))
            problems.append(f"{rel}:{line}: imports {top} ({'/'.join(sorted(dists))}), declared in none of {where}")
    assert problems == [], "\n".join(problems)


def test_every_import_of_the_tests_and_perf_scripts_is_declared_somewhere():
    problems = [f"{rel}:{line}: imports {top}, declared in no extra"
                for rel, line, top, _ in _third_party(["tests", "benchmarks/perf"])
                if top not in UNDECLARED and not _distributions(top) & ALL_DECLARED]
    assert problems == [], "\n".join(problems)


def test_everything_declared_is_imported_somewhere_or_used_by_a_named_program():
    imported = set()
    for _, _, top, _ in _third_party(["fracdata", "benchmarks/fracbench", "benchmarks/perf", "tests"]):
        imported |= _distributions(top)
    unused = sorted(ALL_DECLARED - imported - set(RUNTIME_ONLY) - {"fracdata"})
    assert unused == [], f"declared in pyproject.toml but never imported: {unused} (drop them, or say in RUNTIME_ONLY who uses them)"


def test_the_check_itself_catches_an_undeclared_import(tmp_path):
    """The scan would see a new lazy `import torch` in a core module (a function-level import)."""
    mod = tmp_path / "core.py"
    mod.write_text("def f():\n    import torch\n    try:\n        import vllm\n    except ImportError:\n        pass\n")
    assert _imports(mod) == [("torch", 2, False), ("vllm", 4, True)]
    assert not _distributions("torch") & DECLARED[""]
