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
    for t in ("install", "dataset", "test", "mine", "label", "train", "bench", "demo", "demo-ablation"):
        assert t in targets
        assert f"make {t}" in README, t


def test_import_fracdata_is_light():
    code = ("import sys, fracdata, fracdata.cli, fracdata.taxonomy, fracdata.records, fracdata.answer; "
            "heavy = [m for m in ('torch', 'transformers', 'llamafactory', 'datasets', 'openai') if m in sys.modules]; "
            "print(heavy)")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"
