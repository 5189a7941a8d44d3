"""`fracbench models`: the model entries `--model`/`--models` accept by name, and the shipped tasks.

One line per entry: name, kind, prompt variant, and what it points at (checkpoint path and
adapter for `kind: local`, model @ base_url and the key variable for an API). `${VAR:-default}`
is expanded from the environment, as `fracbench infer` would; every entry is validated, so a
broken one is an error here rather than halfway through a run. The shipped entries and tasks are
fracdata's package data (fracdata/inference/models/, fracdata/inference/tasks/), found the same way
from a checkout or a wheel.
"""

from __future__ import annotations

from pathlib import Path

from fracdata.errors import FracdataError


def add_arguments(p) -> None:
    p.add_argument("--models-dir", help="folder of model entries (default: the shipped ones)")


def describe(entry) -> str:
    if entry.kind == "local":
        where = entry.path + (f" + adapter {entry.adapter}" if entry.adapter else "")
    else:
        where = f"{entry.model} @ {entry.base_url}" + (f" (key ${entry.api_key_env})" if entry.api_key_env else "")
    return f"{entry.name:16s} {entry.kind:17s} {entry.prompt or 'default':9s} {where}"


def run(args) -> int:
    from fracdata.inference.entry import MODELS_DIR, load_model
    from fracdata.inference.task import TASKS_DIR

    folder = Path(args.models_dir) if args.models_dir else MODELS_DIR
    if not folder.is_dir():
        raise FracdataError(f"{folder}: no such folder of model entries")
    files = sorted(folder.glob("*.yaml"))
    if not files:
        raise FracdataError(f"{folder}: no model entries (*.yaml)")
    errors = []
    print(f"{'name':16s} {'kind':17s} {'prompt':9s} points at")
    for path in files:
        try:
            print(describe(load_model(str(path))))
        except FracdataError as e:
            errors.append(str(e))
    tasks = sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))
    bad = f" ({len(errors)} invalid, below)" if errors else ""
    print(f"{len(files) - len(errors)} model entries in {folder}{bad}; tasks in {TASKS_DIR}: {', '.join(tasks) or 'none'}")
    if errors:
        raise FracdataError("\nerror: ".join(errors))
    return 0
