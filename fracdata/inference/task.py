"""Task files (fracdata/inference/tasks/*.yaml): the benchmark's question, its prompt variants and
answer format, the gold file it scores by default and its metric settings.

YAML data validated with pydantic; unknown keys are errors. `prompt_text` renders a variant: the
training prompt byte for byte (fracdata:prompt.j2), or a Jinja text over the taxonomy for models
that never saw it. fracbench scores a task; `fracdata analyze` asks the specialist its prompt.
"""

from __future__ import annotations

import hashlib
import json
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator

from fracdata.errors import FracdataError
from fracdata.files import load_mapping
from fracdata.inference.entry import Strict, resolve_ref, validated

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
BUILTIN_PROMPT = "fracdata:prompt.j2"  # = fracdata.answer.render_prompt(), the training prompt
IMAGE = "<image>"


class Metrics(Strict):
    bootstrap: int = Field(2000, ge=100)  # resamples of images for the 95% CIs
    permutations: int = Field(10000, ge=100)  # approximate-randomisation rounds per model pair
    seed: int = 0


class Task(Strict):
    name: str
    version: int
    gold: str  # relative to the working directory; `--gold` overrides
    answer_format: Literal["features-v1"]  # fracdata/templates/answer.j2
    taxonomy_version: int
    prompts: dict[str, str]  # variant -> Jinja text with one <image>, or BUILTIN_PROMPT
    default_prompt: str = "training"
    metrics: Metrics = Field(default_factory=Metrics)

    @model_validator(mode="after")
    def _known_default(self):
        if self.default_prompt not in self.prompts:
            raise ValueError(f"default_prompt {self.default_prompt!r} is not one of prompts {sorted(self.prompts)}")
        return self


def load_task(ref: str, tasks_dir: Path = TASKS_DIR) -> tuple[Task, Path]:
    from fracdata.taxonomy import load_taxonomy

    path = resolve_ref(ref, Path(tasks_dir), "task")
    task = validated(Task, load_mapping(path, "task"), path)
    tax = load_taxonomy()
    if task.taxonomy_version != tax.version:
        raise FracdataError(f"{path}: taxonomy_version {task.taxonomy_version} but fracdata's taxonomy is "
                            f"v{tax.version}: re-check the gold labels, then bump the task's version")
    for variant in task.prompts:  # render every variant now, so a broken one fails before any model runs
        text = prompt_text(task, variant)
        if text.count(IMAGE) != 1:
            raise FracdataError(f"{path}: prompt {variant!r} must contain {IMAGE} exactly once")
    return task, path


def prompt_text(task: Task, variant: str) -> str:
    """The exact prompt of a variant; BUILTIN_PROMPT is the training prompt, byte for byte."""
    from fracdata.answer import render_prompt
    from fracdata.taxonomy import load_taxonomy

    if variant not in task.prompts:
        raise FracdataError(f"task {task.name}: no prompt variant {variant!r} (have {sorted(task.prompts)})")
    src = task.prompts[variant]
    if src == BUILTIN_PROMPT:
        return render_prompt()
    return _compile(src.strip()).render(taxonomy=load_taxonomy(), training_prompt=render_prompt())


@lru_cache(maxsize=32)
def _compile(src: str):
    import jinja2

    return jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=False).from_string(src)


def task_hash(task: Task) -> str:
    """What shapes a model's input and its parse: prompts, answer format, taxonomy, templates.

    The gold path and the metric settings are left out on purpose: re-annotating gold or
    changing the bootstrap count must not invalidate cached predictions.
    """
    from fracdata.answer import template_sha256
    from fracdata.taxonomy import load_taxonomy

    tax = load_taxonomy()
    body = {"name": task.name, "version": task.version, "answer_format": task.answer_format,
            "prompts": {k: prompt_text(task, k) for k in sorted(task.prompts)},
            "taxonomy": [tax.version, tax.sha256], "templates": template_sha256()}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


