"""Where this code runs from: a source checkout or an installed wheel, and the git state to record.

Two things depend on it. Data that sits at the top of the repository (`llamafactory_configs/`)
is installed inside the package by a wheel (`fracdata/llamafactory_configs/`, see pyproject.toml),
so `shipped()` returns the checkout's copy in a checkout (what you edit is what runs) and the
installed copy otherwise. And every provenance record (`fracdata train`'s provenance.json,
fracbench's metrics.json) takes its git state from `git_state()`, which says `not a git checkout`
for a wheel, an unpacked tarball, or a machine without git, instead of failing. Third, what a
missing module needs: `install_hint()` names the extra that declares it (the CLI's one-line error).
"""

from __future__ import annotations

import subprocess
import tomllib
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent  # .../fracdata
NOT_A_CHECKOUT = "not a git checkout"


def source_root() -> Path | None:
    """The source tree fracdata is imported from (the folder holding pyproject.toml), or None when installed."""
    root = PACKAGE.parent
    try:
        with open(root / "pyproject.toml", "rb") as f:
            name = tomllib.load(f).get("project", {}).get("name")
    except (OSError, tomllib.TOMLDecodeError):
        return None
    return root if name == "fracdata" else None


def shipped(folder: str) -> Path:
    """A top-level data folder of the repository: the checkout's own, else the copy installed in the package."""
    root = source_root()
    if root is not None and (root / folder).is_dir():
        return root / folder
    return PACKAGE / folder


def git_state(root: Path | None = None) -> dict:
    """{"commit": 40 hex digits, "dirty": tracked files differ from it} for the source checkout, or
    {"commit": None, "dirty": None, "note": "not a git checkout (...)"}. Read-only git calls.

    A source tree that is only a subfolder of some other repository (a wheel installed into a
    virtualenv inside a checkout, a vendored copy) is not a checkout: its commit would be another
    project's.
    """
    root = source_root() if root is None else Path(root).resolve()
    if root is None:
        return _none(f"installed package at {PACKAGE}")

    def git(*argv: str) -> str:
        return subprocess.run(["git", "-C", str(root), *argv], capture_output=True, text=True, check=True,
                              timeout=10).stdout.strip()

    try:
        top = Path(git("rev-parse", "--show-toplevel")).resolve()
        if top != root:
            return _none(f"{root} lies inside the repository {top}")
        commit = git("rev-parse", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no") != ""
    except FileNotFoundError:
        return _none("git is not installed")
    except (OSError, subprocess.SubprocessError):
        return _none(f"{root} has no git history")
    return {"commit": commit, "dirty": dirty}


def _none(why: str) -> dict:
    return {"commit": None, "dirty": None, "note": f"{NOT_A_CHECKOUT} ({why})"}


def describe(state: dict, short: bool = False) -> str:
    """One line for logs and reports: the commit (+ ` (uncommitted changes)`; short: 10 digits + `+dirty`),
    or `not a git checkout`."""
    if state.get("commit") is None:
        return NOT_A_CHECKOUT
    if short:
        return state["commit"][:10] + ("+dirty" if state.get("dirty") else "")
    return state["commit"] + (" (uncommitted changes)" if state.get("dirty") else "")


# Import names whose distribution is called something else (the rest: `_` -> `-`, lower case).
_DISTRIBUTION = {"PIL": "pillow", "yaml": "pyyaml", "sklearn": "scikit-learn", "multipart": "python-multipart"}


def declared() -> dict[str, list[str]]:
    """Distribution name (lower case, `-`) -> the extras that declare it ("" = core): from pyproject.toml
    in a checkout (what the next install gives), else from the installed package's metadata."""
    import re

    out: dict[str, list[str]] = {}

    def add(req: str, extra: str) -> None:
        name = re.match(r"[A-Za-z0-9._-]+", req).group(0).lower().replace("_", "-")
        out.setdefault(name, []).append(extra)

    root = source_root()
    if root is not None:
        with open(root / "pyproject.toml", "rb") as f:
            project = tomllib.load(f)["project"]
        for req in project.get("dependencies", []):
            add(req, "")
        for extra, reqs in project.get("optional-dependencies", {}).items():
            for req in reqs:
                add(req, extra)
        return out
    from importlib.metadata import PackageNotFoundError, requires

    try:
        reqs = requires("fracdata") or []
    except PackageNotFoundError:
        return out
    for req in reqs:
        extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)['\"]", req)
        add(req, extra.group(1) if extra else "")
    return out


def install_hint(module: str) -> str:
    """How to get a missing third-party module, e.g. `install the `train` extra: pip install 'fracdata[train]'`."""
    top = module.split(".")[0]
    want = _DISTRIBUTION.get(top, top).lower().replace("_", "-")
    extras = declared().get(want)
    if not extras:
        return f"{want} is not among fracdata's declared dependencies: pip install {want}"
    if "" in extras:
        return "it is a core dependency: reinstall fracdata (pip install fracdata)"
    choice = next((e for e in extras if e != "dev"), extras[0])
    return f"install the `{choice}` extra: pip install 'fracdata[{choice}]'"


# What makes CPU floats differ between two runs of the same code on the same data: the CPU (its
# vector units pick the kernels), the thread counts (they fix the order of reductions) and the
# numerical libraries' versions. Recorded by `fracdata train`, fracbench and `fracdata demo`.
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")
VECTOR_FLAGS = {"avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_tile"}
NUMERIC = ("torch", "transformers", "llamafactory", "peft", "tokenizers", "numpy", "accelerate")


def host(env: dict | None = None) -> dict:
    """{"cpu", "cpu_flags", "cores", "threads": {variable: value, "torch": n when torch is loaded}, "python",
    "platform", "packages": {name: version}}, without importing anything heavy."""
    import os
    import platform
    import sys
    from importlib.metadata import PackageNotFoundError, version

    env = os.environ if env is None else env
    cpu, flags = None, []
    try:  # the model name, and the vector extensions that choose oneDNN's / MKL's kernels
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name") and cpu is None:
                    cpu = line.split(":", 1)[1].strip()
                elif line.startswith("flags") and not flags:
                    flags = sorted(set(line.split(":", 1)[1].split()) & VECTOR_FLAGS)
    except OSError:
        pass
    threads = {k: env.get(k) for k in THREAD_VARS}
    if "torch" in sys.modules:  # a process that loaded torch: the count its kernels use
        threads["torch"] = sys.modules["torch"].get_num_threads()

    def ver(name):
        try:
            return version(name)
        except PackageNotFoundError:
            return None

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {"cpu": cpu or platform.processor() or platform.machine(), "cpu_flags": flags, "cores": cores, "threads": threads,
            "python": sys.version.split()[0], "platform": platform.platform(),
            "packages": {n: ver(n) for n in NUMERIC}}
