"""fracdata/provenance.py: git state for provenance records, shipped data folders, install hints."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fracdata import provenance
from fracdata.provenance import NOT_A_CHECKOUT, describe, git_state, install_hint, shipped

ROOT = Path(__file__).resolve().parents[1]


def git(cwd: Path, *argv: str) -> str:
    return subprocess.run(["git", "-C", str(cwd), "-c", "user.name=t", "-c", "user.email=t@example.org", *argv],
                          capture_output=True, text=True, check=True).stdout.strip()


def test_this_checkout_reports_its_commit_and_dirty_flag():
    want_commit = git(ROOT, "rev-parse", "HEAD")
    want_dirty = git(ROOT, "status", "--porcelain", "--untracked-files=no") != ""
    assert git_state() == {"commit": want_commit, "dirty": want_dirty}


def test_a_fresh_repository_then_an_edit_makes_it_dirty(tmp_path):
    git(tmp_path, "init", "-q")
    (tmp_path / "a.txt").write_text("one\n")
    git(tmp_path, "add", "a.txt")
    git(tmp_path, "commit", "-q", "-m", "one")
    commit = git(tmp_path, "rev-parse", "HEAD")
    assert git_state(tmp_path) == {"commit": commit, "dirty": False}
    (tmp_path / "b.txt").write_text("untracked files do not count\n")
    assert git_state(tmp_path) == {"commit": commit, "dirty": False}
    (tmp_path / "a.txt").write_text("two\n")
    assert git_state(tmp_path) == {"commit": commit, "dirty": True}
    assert describe(git_state(tmp_path)) == f"{commit} (uncommitted changes)"
    assert describe(git_state(tmp_path), short=True) == f"{commit[:10]}+dirty"


def test_a_folder_without_git_is_not_a_git_checkout(tmp_path):
    assert git_state(tmp_path) == {"commit": None, "dirty": None,
                                   "note": f"not a git checkout ({tmp_path.resolve()} has no git history)"}
    assert describe(git_state(tmp_path)) == describe(git_state(tmp_path), short=True) == NOT_A_CHECKOUT


def test_a_source_tree_inside_another_repository_does_not_borrow_its_commit(tmp_path):
    """E.g. a virtualenv inside some checkout: `git rev-parse HEAD` there would name the outer project."""
    git(tmp_path, "init", "-q")
    inner = tmp_path / "venv" / "site-packages"
    inner.mkdir(parents=True)
    assert git_state(inner) == {"commit": None, "dirty": None,
                                "note": f"not a git checkout ({inner.resolve()} lies inside the repository {tmp_path.resolve()})"}


def test_no_git_program_is_not_a_git_checkout(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no `git` to run
    assert git_state(ROOT) == {"commit": None, "dirty": None, "note": "not a git checkout (git is not installed)"}


def test_an_installed_package_is_not_a_git_checkout(monkeypatch):
    monkeypatch.setattr(provenance, "source_root", lambda: None)
    assert git_state() == {"commit": None, "dirty": None,
                           "note": f"not a git checkout (installed package at {provenance.PACKAGE})"}


def test_shipped_folders_are_the_checkouts_own_in_a_checkout_and_the_installed_copy_otherwise(monkeypatch):
    from fracdata.train.recipes import RECIPES_ROOT

    assert provenance.source_root() == ROOT
    assert shipped("llamafactory_configs") == RECIPES_ROOT == ROOT / "llamafactory_configs"
    monkeypatch.setattr(provenance, "source_root", lambda: None)
    assert shipped("llamafactory_configs") == ROOT / "fracdata" / "llamafactory_configs"


def test_a_tree_whose_pyproject_is_another_project_is_not_our_source(tmp_path, monkeypatch):
    (tmp_path / "fracdata").mkdir()
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "something-else"\n')
    monkeypatch.setattr(provenance, "PACKAGE", tmp_path / "fracdata")
    assert provenance.source_root() is None
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "fracdata"\n')
    assert provenance.source_root() == tmp_path


@pytest.mark.parametrize("module, hint", [
    ("torch", "install the `train` extra: pip install 'fracdata[train]'"),
    ("llamafactory.hparams", "install the `train` extra: pip install 'fracdata[train]'"),
    ("fastapi", "install the `serve` extra: pip install 'fracdata[serve]'"),
    ("sklearn", "install the `train` extra: pip install 'fracdata[train]'"),  # fracdata probe's
    ("reportlab", "install the `papers` extra: pip install 'fracdata[papers]'"),  # fracdata synth --papers
    ("PIL", "it is a core dependency: reinstall fracdata (pip install fracdata)"),
    ("vllm", "vllm is not among fracdata's declared dependencies: pip install vllm"),
])
def test_install_hints_name_the_extra_that_declares_the_module(module, hint):
    assert install_hint(module) == hint


def test_a_missing_extra_is_one_line_naming_the_extra_not_a_traceback():
    """As in a core-only install: `fracdata recipes check` needs LlamaFactory's parser (torch first)."""
    code = ("import sys; sys.modules['torch'] = None; from fracdata.cli import main; "
            "raise SystemExit(main(['recipes', 'check', 'smoke/tiny_qwen3vl_lora_sft.yaml']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr == ("error: fracdata recipes needs torch, which is not installed: "
                           "install the `train` extra: pip install 'fracdata[train]'\n")


def test_host_records_what_moves_cpu_floats_without_importing_torch():
    """Threads fix the order of float reductions, the CPU's vector units pick the kernels, the
    libraries the code: the demo's figure differs across those, so every record carries them."""
    from importlib.metadata import version

    code = ("import json, sys; from fracdata.provenance import host; "
            "h = host({'OMP_NUM_THREADS': '2', 'MKL_NUM_THREADS': '1'}); "
            "print(json.dumps([h, 'torch' in sys.modules]))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    h, torch_loaded = __import__("json").loads(out)
    assert not torch_loaded  # fracbench and the demo record it without paying for torch
    assert h["threads"] == {"OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": None}
    cpuinfo = Path("/proc/cpuinfo").read_text()
    model = next(line.split(":", 1)[1].strip() for line in cpuinfo.splitlines() if line.startswith("model name"))
    assert h["cpu"] == model and set(h["cpu_flags"]) <= provenance.VECTOR_FLAGS
    assert h["packages"]["numpy"] == version("numpy") and h["packages"]["torch"] == version("torch")
    assert h["python"] == sys.version.split()[0] and h["cores"] >= 1


def test_host_counts_torch_threads_once_torch_is_loaded():
    import torch

    assert provenance.host({})["threads"]["torch"] == torch.get_num_threads()
