"""Build fracdata's wheel from a copy of the packaging inputs, so the build writes nothing into the
checkout (setuptools leaves build/ and *.egg-info beside the sources it builds)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Where a file lands in the wheel: source folder -> folder in the wheel.
WHEEL_DIRS = {"fracdata": "fracdata", "benchmarks/fracbench": "fracbench",
              "llamafactory_configs": "fracdata/llamafactory_configs"}


def tracked(folder: str) -> list[str]:
    """Files of the source tree under `folder` (git's list in a checkout, so stray local files don't count)."""
    try:
        out = subprocess.run(["git", "-C", str(ROOT), "ls-files", "-z", "--", folder], capture_output=True,
                             check=True).stdout.decode()
        files = [f for f in out.split("\0") if f]
    except (OSError, subprocess.CalledProcessError):
        files = []
    if not files:
        files = [str(p.relative_to(ROOT)) for p in (ROOT / folder).rglob("*")
                 if p.is_file() and "__pycache__" not in p.parts]
    return [f for f in files if (ROOT / f).is_file()]  # deleted but not yet committed: not shipped


def build_wheel(tmp: Path, isolated: bool) -> Path:
    """The wheel, built in tmp/. isolated=True is what a user's `pip wheel .` does (a fresh build
    environment with setuptools from the index); False uses this interpreter's setuptools (fast)."""
    src = tmp / "src"
    src.mkdir(parents=True)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, src / name)
    for folder in WHEEL_DIRS:
        for f in tracked(folder):
            (src / f).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / f, src / f)
    argv = [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp / "dist"), str(src)]
    if not isolated:
        argv.insert(5, "--no-build-isolation")
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (whl,) = (tmp / "dist").glob("fracdata-*.whl")
    return whl
