"""Every CLI command has --help and is documented in the README; every make target is in `make help`."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from fracdata.cli import COMMANDS

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_fracdata_command_has_help_and_is_in_the_readme(command):
    proc = subprocess.run([sys.executable, "-m", "fracdata", command, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("usage: fracdata " + command)
    assert f"fracdata {command}" in README, f"README does not mention `fracdata {command}`"


def test_every_fracbench_command_is_in_the_readme():
    from fracbench.cli import COMMANDS as BENCH

    for command in BENCH:
        proc = subprocess.run([sys.executable, "-m", "fracbench", command, "--help"], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
        assert re.search(rf"fracbench [a-z/]*\b{command}\b", README), f"README does not mention fracbench {command}"


def test_make_help_lists_every_target_and_the_readme_names_the_stage_targets():
    targets = re.findall(r"^([a-z][a-z-]*):.*?## ", (ROOT / "Makefile").read_text(), re.M)
    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True).stdout
    assert [line.split()[1] for line in out.splitlines()] == targets
    for t in ("install", "dataset", "test", "test-fast", "mine", "label", "train", "bench", "demo", "demo-ablation"):
        assert t in targets
        assert f"make {t}" in README, t


def test_import_fracdata_is_light():
    code = ("import sys, fracdata, fracdata.cli, fracdata.taxonomy, fracdata.records, fracdata.answer; "
            "heavy = [m for m in ('torch', 'transformers', 'llamafactory', 'datasets', 'openai') if m in sys.modules]; "
            "print(heavy)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def _recipe(target: str) -> list[str]:
    """The command lines of a Makefile rule."""
    text = (ROOT / "Makefile").read_text()
    body = re.search(rf"^{re.escape(target)}:[^\n]*\n((?:\t[^\n]*\n)*)", text, re.M)
    assert body, target
    return [line.strip() for line in body.group(1).splitlines()]


def test_make_test_runs_everything_and_test_fast_leaves_out_only_the_slow_tests():
    import tomllib

    assert _recipe("test") == ["$(PY) -m pytest -q"]  # no -m, no -k: CI runs every test
    assert _recipe("test-fast") == ['$(PY) -m pytest -q -m "not slow"']
    assert (ROOT / ".ci" / "run").read_text().rstrip().splitlines()[-1] == "make test"
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert "--strict-markers" in ini["addopts"].split()  # a typo'd marker fails instead of running the test as fast
    assert [m.split(":")[0] for m in ini["markers"]] == ["slow"]
