"""From a wheel in a fresh virtualenv, outside the checkout: the core install, then `[train]`.

The commands run from an empty working directory, with PYTHONPATH unset, by the virtualenv's own
`fracdata`/`fracbench` scripts: nothing of the checkout is on sys.path (asserted). The whole
sandbox is a git repository of its own, so a wheel that borrowed an enclosing repository's commit
for its provenance would show here.

Slow, and the one test that reaches the package index: pip installs the dependencies as a user's
pip would (through this machine's pip configuration and its cache). torch, torchvision and
torchaudio are pinned to the versions of the environment running the tests, so pip never
resolves another torch build than the project's own .venv has (on this machine: from local disk,
under the /etc/xdg/pip cap). Each step's seconds are printed (`pytest -s` shows them).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from tests.support.wheel import ROOT, build_wheel

pytestmark = pytest.mark.slow

PAPER = "qwen3vl_32b_lora_sft_ds3.yaml"


def _step(what: str, t0: float) -> None:
    print(f"[wheel-install] {what}: {time.perf_counter() - t0:.0f} s", flush=True)


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wheel-install")
    subprocess.run(["git", "init", "-q", str(tmp)], check=True)
    t0 = time.perf_counter()
    whl = build_wheel(tmp, isolated=True)
    _step("pip wheel (isolated build)", t0)
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True)
    _step("python -m venv", t0)
    cwd = tmp / "run"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "PYTHONSTARTUP")
           and not k.startswith(("FRACBENCH_", "LF_API_", "VLLM_"))}
    env["PATH"] = f"{tmp / 'venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["PIP_NO_INPUT"] = "1"
    pins = []
    for name in ("torch", "torchvision", "torchaudio"):
        try:
            pins.append(f"{name}=={version(name)}")
        except PackageNotFoundError:
            pass
    (tmp / "pins.txt").write_text("".join(p + "\n" for p in pins))
    bin_ = tmp / "venv" / "bin"
    site = Path(subprocess.run([str(bin_ / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True, env=env, cwd=cwd).stdout.strip())

    def run(*argv: str, timeout: int = 600) -> subprocess.CompletedProcess:
        exe = str(bin_ / argv[0]) if (bin_ / argv[0]).exists() else argv[0]
        return subprocess.run([exe, *argv[1:]], capture_output=True, text=True, env=env, cwd=cwd, timeout=timeout)

    def pip_install(spec: str, what: str) -> None:
        t0 = time.perf_counter()
        proc = run("python", "-m", "pip", "install", "-q", "-c", str(tmp / "pins.txt"), spec, timeout=3000)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
        _step(what, t0)

    return SimpleNamespace(tmp=tmp, whl=whl, site=site, run=run, pip_install=pip_install)


@pytest.fixture(scope="module")
def core(venv):
    venv.pip_install(str(venv.whl), "pip install fracdata (core)")
    return venv


@pytest.fixture(scope="module")
def train(core):
    core.pip_install(f"{core.whl}[train]", "pip install 'fracdata[train]'")
    return core


def test_core_imports_from_the_virtualenv_with_nothing_of_the_checkout_on_the_path(core):
    proc = core.run("python", "-c", "import fracdata, fracbench, json, sys; "
                                    "print(json.dumps([fracdata.__file__, fracbench.__file__, sys.path]))")
    assert proc.returncode == 0, proc.stderr
    fd, fb, path = json.loads(proc.stdout)
    assert fd == str(core.site / "fracdata" / "__init__.py") and fb == str(core.site / "fracbench" / "__init__.py")
    assert [p for p in path if p and Path(p).resolve().is_relative_to(ROOT)] == []
    assert core.run("python", "-c", "import scipy.fftpack").returncode == 0  # build: the 8 perceptual hashes
    # scikit-learn is the train extra's (fracdata probe), not the core's: kappa is fracdata/agreement.py
    proc = core.run("python", "-c", "import sklearn")
    assert proc.returncode == 1 and "No module named 'sklearn'" in proc.stderr


def test_core_recipes_list_shows_the_shipped_recipes_paper_first(core):
    from fracdata.train import recipes

    proc = core.run("fracdata", "recipes", "list")
    assert proc.returncode == 0, proc.stderr
    want = [f"{recipes.kind(recipes.load(p)):7s} {p.relative_to(recipes.RECIPES_ROOT)}" for p in recipes.find_recipes()]
    assert proc.stdout.splitlines() == want
    assert f"train   {PAPER}" in proc.stdout.splitlines()
    assert proc.stderr == f"{len(want)} recipes under {core.site / 'fracdata' / 'llamafactory_configs'}\n"


def test_core_fracbench_run_help_and_the_shipped_model_entries(core):
    proc = core.run("fracbench", "run", "--help")
    assert proc.returncode == 0 and proc.stdout.startswith("usage: fracbench run"), proc.stderr
    proc = core.run("fracbench", "models")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    shipped = sorted((ROOT / "fracdata" / "inference" / "models").glob("*.yaml"))
    assert [line.split()[0] for line in lines[1:-1]] == [yaml.safe_load(p.read_text()).get("name", p.stem) for p in shipped]
    assert shipped and lines[-1] == (f"{len(shipped)} model entries in {core.site / 'fracdata' / 'inference' / 'models'}; "
                                     f"tasks in {core.site / 'fracdata' / 'inference' / 'tasks'}: fractography-v1")
    proc = core.run("python", "-c", "from fracdata.inference.task import load_task; print(load_task('fractography-v1')[1])")
    assert proc.stdout.strip() == str(core.site / "fracdata" / "inference" / "tasks" / "fractography-v1.yaml"), proc.stderr


def test_core_demo_finds_its_recipe_and_provenance_is_not_a_git_checkout(core):
    proc = core.run("python", "-c", "import json; from fracdata.demo.study import RECIPE; from fracdata.provenance import git_state; "
                                    "print(json.dumps([str(RECIPE), RECIPE.is_file(), git_state()]))")
    assert proc.returncode == 0, proc.stderr
    recipe, exists, git = json.loads(proc.stdout)
    assert recipe == str(core.site / "fracdata" / "llamafactory_configs" / "demo" / "tiny_qwen3vl_full_sft.yaml") and exists
    # inside a git repository (the sandbox), and still: the installed package is no checkout
    assert git == {"commit": None, "dirty": None, "note": f"not a git checkout (installed package at {core.site / 'fracdata'})"}


def test_core_train_says_which_extra_it_needs_in_one_line(core):
    proc = core.run("fracdata", "train", PAPER, "--dry-run")
    assert proc.returncode == 2
    assert proc.stderr == ("error: fracdata train needs torch, which is not installed: "
                           "install the `train` extra: pip install 'fracdata[train]'\n")


def test_train_validates_every_shipped_recipe_with_llamafactory(train):
    """`recipes check` runs LlamaFactory's own parser on each recipe, and checks that each
    relative `deepspeed:` path resolved to a DeepSpeed JSON of the installed copy."""
    from fracdata.train import recipes

    n = len(recipes.find_recipes())
    proc = train.run("fracdata", "recipes", "check", timeout=1200)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = proc.stdout.splitlines()
    assert lines[-1] == f"checked {n} recipes: {n} ok, 0 with errors"
    ok = [line for line in lines if line.startswith("ok ")]
    assert len(ok) == n and all(str(train.site / "fracdata" / "llamafactory_configs") in line for line in ok)


def test_train_paper_recipe_renders_with_the_installed_deepspeed_config(train):
    proc = train.run("fracdata", "recipes", "render", PAPER, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    ds = train.site / "fracdata" / "llamafactory_configs" / "deepspeed" / "ds_z3_config.json"
    assert f"deepspeed: {ds}" in proc.stdout.splitlines()


def test_train_finds_the_recipe_by_name_validates_it_and_stops_at_the_missing_dataset(train):
    proc = train.run("fracdata", "train", PAPER, "--dry-run", timeout=600)  # a hub-model recipe has no default data
    assert proc.returncode == 2
    assert "dataset_dir is not set and the model Qwen/Qwen3-VL-32B-Instruct is a hub id" in proc.stderr \
        and proc.stderr.count("\n") == 1, proc.stderr
    proc = train.run("fracdata", "train", PAPER, "--dry-run", "--dataset-dir", "data/processed/none", timeout=600)
    assert proc.returncode == 2
    assert "dataset_info.json not found" in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
