"""Task files (benchmarks/fracbench/tasks/*.yaml) and model entries (benchmarks/fracbench/models/*.yaml).

Both are YAML data validated with pydantic; unknown keys are errors. Model entries may use
`${VAR}` or `${VAR:-default}` in path-like fields (path, adapter, served_path, base_url, model),
expanded from the environment when loaded; `--model-path NAME=PATH`, `--adapter NAME=PATH` and
`--base-url NAME=URL` override an entry's field at run time (see docs/bench.md).
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fracdata.errors import FracdataError
from fracdata.files import load_mapping

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE / "tasks"
MODELS_DIR = HERE / "models"
BUILTIN_PROMPT = "fracdata:prompt.j2"  # = fracdata.answer.render_prompt(), the training prompt
IMAGE = "<image>"

# Decoding keys a local model accepts (greedy always) and those passed to Chat Completions.
LOCAL_DECODING = {"max_new_tokens"}
API_DECODING = {"max_completion_tokens", "max_tokens", "temperature", "top_p", "seed",
                "reasoning_effort", "extra_body"}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Metrics(_Strict):
    bootstrap: int = Field(2000, ge=100)  # resamples of images for the 95% CIs
    permutations: int = Field(10000, ge=100)  # approximate-randomisation rounds per model pair
    seed: int = 0


class Task(_Strict):
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


class ModelEntry(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")  # also the predictions file name
    kind: Literal["local", "openai-compatible", "labels"]  # labels: a LabelRecord JSONL at `path` (fracbench/labels.py)
    prompt: str | None = None  # task prompt variant; default: the task's default_prompt
    decoding: dict = Field(default_factory=dict)
    # local
    path: str | None = None  # checkpoint folder (or a hub id already in the local HF cache)
    adapter: str | None = None  # PEFT adapter folder applied on `path`
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    batch_size: int = Field(8, ge=1)
    image_max_pixels: int = 768 * 768  # LlamaFactory's defaults: must match the training recipe
    image_min_pixels: int = 32 * 32
    # openai-compatible
    base_url: str | None = None
    model: str | None = None  # the model name the server expects
    api_key_env: str | None = None  # NAME of the variable holding the key; None = keyless local server
    served_path: str | None = None  # checkpoint a local server serves: hashed into the identity
    lora_base: str | None = None  # `model` is a LoRA adapter served beside this base name: checked applied (adapter_gate.py)
    concurrency: int = Field(4, ge=1)
    max_retries: int = Field(4, ge=0)  # the openai SDK's retries (429, 5xx, timeouts) with backoff
    timeout_s: float = 120.0

    @model_validator(mode="before")
    @classmethod
    def _no_engine(cls, data):
        if isinstance(data, dict) and "engine" in data:  # the in-process vLLM engine never ran (issue 13)
            raise ValueError("`engine` is gone: local checkpoints run with transformers; to use vLLM, serve the "
                             "checkpoint with `vllm serve` and score it as kind openai-compatible (docs/bench.md)")
        return data

    @model_validator(mode="after")
    def _fields_for_kind(self):
        local = {"path", "adapter"}
        api = {"base_url", "model", "api_key_env", "served_path", "lora_base"}
        given = {k for k in self.model_fields_set if getattr(self, k) is not None}
        if self.kind == "labels":  # a labels file has a path and nothing to run
            wrong = given - {"name", "kind", "path"}
            if self.path is None:
                raise ValueError("a labels entry needs `path` (a LabelRecord JSONL)")
            if wrong:
                raise ValueError(f"{sorted(wrong)} do not apply to kind 'labels' (it takes only name and path)")
            return self
        if self.kind == "local":
            if self.path is None:
                raise ValueError("a local model needs `path`")
            wrong, allowed = given & api, LOCAL_DECODING
        else:
            if self.base_url is None or self.model is None:
                raise ValueError("an openai-compatible model needs `base_url` and `model`")
            wrong, allowed = given & local, API_DECODING
        if wrong:
            raise ValueError(f"{sorted(wrong)} do not apply to kind {self.kind!r}")
        bad = set(self.decoding) - allowed
        if bad:
            raise ValueError(f"decoding keys {sorted(bad)} do not apply to kind {self.kind!r} (allowed: {sorted(allowed)})")
        return self


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
EXPANDED = ("path", "adapter", "served_path", "base_url", "model", "lora_base")


def expand(value: str, where: str) -> str:
    """`${VAR}` / `${VAR:-default}` from the environment; an unset VAR without default is an error."""
    def sub(m):
        if m.group(1) in os.environ:
            return os.environ[m.group(1)]
        if m.group(2) is not None:
            return m.group(2)
        raise FracdataError(f"{where}: ${{{m.group(1)}}} is not set: export {m.group(1)}=... or write ${{{m.group(1)}:-default}}")
    return _VAR.sub(sub, value)


def _validate(model: type[BaseModel], data: dict, path: Path):
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in e.errors())
        raise FracdataError(f"{path}: {errs}") from None


def _resolve(ref: str, folder: Path, what: str) -> Path:
    """A name in the default folder (`fractography-v1`) or a path to a YAML file."""
    p = Path(ref)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise FracdataError(f"{p}: {what} file not found")
        return p
    p = folder / f"{ref}.yaml"
    if not p.is_file():
        known = sorted(q.stem for q in folder.glob("*.yaml"))
        raise FracdataError(f"{what} {ref!r} not found in {folder} (known: {', '.join(known) or 'none'})")
    return p


def load_task(ref: str, tasks_dir: Path = TASKS_DIR) -> tuple[Task, Path]:
    from fracdata.taxonomy import load_taxonomy

    path = _resolve(ref, Path(tasks_dir), "task")
    task = _validate(Task, load_mapping(path, "task"), path)
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


def parse_overrides(pairs: list[str] | None, flag: str) -> dict[str, str]:
    out = {}
    for pair in pairs or []:
        name, sep, value = pair.partition("=")
        if not sep or not name or not value:
            raise FracdataError(f"{flag} {pair!r}: expected NAME=VALUE")
        out[name] = value
    return out


def load_model(ref: str, models_dir: Path = MODELS_DIR, overrides: dict[str, dict[str, str]] | None = None) -> ModelEntry:
    """Load one entry, apply `${VAR}` expansion, then the command-line overrides {field: {name: value}}."""
    path = _resolve(ref, Path(models_dir), "model")
    data = load_mapping(path, "model")
    data.setdefault("name", path.stem)
    for key in EXPANDED:
        if isinstance(data.get(key), str):
            data[key] = expand(data[key], f"{path}: {key}")
    for key, by_name in (overrides or {}).items():
        if data["name"] in by_name:
            data[key] = by_name[data["name"]]
    return _validate(ModelEntry, data, path)
