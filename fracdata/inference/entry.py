"""Model entries: the registry of models that fracbench scores and `fracdata analyze` asks.

An entry is YAML data (fracdata/inference/models/*.yaml, or any YAML path) validated with pydantic;
unknown keys are errors. Entries may use `${VAR}` or `${VAR:-default}` in path-like fields (path,
adapter, served_path, base_url, model), expanded from the environment when loaded;
`--model-path NAME=PATH`, `--adapter NAME=PATH` and `--base-url NAME=URL` override an entry's field
at run time (docs/bench.md). `open_model` turns an entry into a backend with one call for one image,
`ask(image, prompt) -> Answer`, and one for many, `answer(items, prompt)`: a `local` entry becomes a
loaded checkpoint (transformers + peft, on the GPU when one is visible), an `openai-compatible`
entry an endpoint client. There is no in-process vLLM engine: to score at scale, serve the
checkpoint with `vllm serve` and use it as an `openai-compatible` entry (docs/bench.md).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from fracdata.errors import FracdataError
from fracdata.files import expand_env, load_mapping

MODELS_DIR = Path(__file__).resolve().parent / "models"

# Decoding keys a local model accepts (greedy always) and those passed to Chat Completions.
LOCAL_DECODING = {"max_new_tokens"}
API_DECODING = {"max_completion_tokens", "max_tokens", "temperature", "top_p", "seed",
                "reasoning_effort", "extra_body"}


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ModelEntry(Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9._+-]+$")  # also the predictions file name
    # labels: a LabelRecord JSONL at `path` (fracbench/labels.py); probe: logistic regressions on a
    # dataset folder's training split (`path`) over `encoder`'s vision tower (fracbench/probe.py)
    kind: Literal["local", "openai-compatible", "labels", "probe"]
    prompt: str | None = None  # task prompt variant; default: the task's default_prompt
    decoding: dict = Field(default_factory=dict)
    # local
    path: str | None = None  # checkpoint folder (or a hub id already in the local HF cache)
    adapter: str | None = None  # PEFT adapter folder applied on `path`
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"  # auto: bf16 on GPU, fp32 on CPU
    batch_size: int = Field(8, ge=1)
    image_max_pixels: int = Field(768 * 768, ge=1)  # LlamaFactory's defaults: must match the training recipe
    image_min_pixels: int = Field(32 * 32, ge=1)
    fused_patch_embed: bool = True  # the Conv3d patch embedding as one matmul (fracdata/train/fusion.py)
    # openai-compatible
    base_url: str | None = None
    model: str | None = None  # the model name the server expects
    api_key_env: str | None = None  # NAME of the variable holding the key; None = keyless local server
    served_path: str | None = None  # checkpoint a local server serves: hashed into the identity
    encoder: str | None = None  # probe: the checkpoint whose vision tower embeds the images
    lora_base: str | None = None  # `model` is a LoRA adapter served beside this base name: checked applied (adapter_gate.py)
    concurrency: int = Field(4, ge=1)
    max_retries: int = Field(4, ge=0, le=100)  # the openai SDK's retries (429, 5xx, timeouts) with backoff
    timeout_s: float = Field(120.0, gt=0, allow_inf_nan=False)  # a whole request; 0 or NaN would end every call at once

    @model_validator(mode="before")
    @classmethod
    def _no_engine(cls, data):
        if isinstance(data, dict) and "engine" in data:  # the in-process vLLM engine never ran (issue 13)
            raise ValueError("`engine` is gone: local checkpoints run with transformers; to use vLLM, serve the "
                             "checkpoint with `vllm serve` and score it as kind openai-compatible (docs/bench.md)")
        return data

    @model_validator(mode="after")
    def _fields_for_kind(self):
        local = {"path", "adapter", "fused_patch_embed"}
        api = {"base_url", "model", "api_key_env", "served_path", "lora_base"}
        given = {k for k in self.model_fields_set if getattr(self, k) is not None}
        if self.kind == "probe":  # a dataset folder and an encoder; pixel limits as the training recipe
            wrong = given - {"name", "kind", "path", "encoder", "image_max_pixels", "image_min_pixels"}
            if self.path is None or self.encoder is None:
                raise ValueError("a probe entry needs `path` (a dataset folder from fracdata build) and `encoder`")
            if wrong:
                raise ValueError(f"{sorted(wrong)} do not apply to kind 'probe'")
            return self
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
            wrong, allowed = given & (api | {"encoder"}), LOCAL_DECODING
        else:
            if self.base_url is None or self.model is None:
                raise ValueError("an openai-compatible model needs `base_url` and `model`")
            wrong, allowed = given & (local | {"encoder"}), API_DECODING
        if wrong:
            raise ValueError(f"{sorted(wrong)} do not apply to kind {self.kind!r}")
        bad = set(self.decoding) - allowed
        if bad:
            raise ValueError(f"decoding keys {sorted(bad)} do not apply to kind {self.kind!r} (allowed: {sorted(allowed)})")
        return self


EXPANDED = ("path", "adapter", "served_path", "base_url", "model", "encoder", "lora_base")


def validated(model: type[BaseModel], data: dict, path: Path):
    try:
        return model.model_validate(data)
    except ValidationError as e:
        errs = "; ".join(f"{'.'.join(str(p) for p in err['loc']) or 'file'}: {err['msg']}" for err in e.errors())
        raise FracdataError(f"{path}: {errs}") from None


def resolve_ref(ref: str, folder: Path, what: str) -> Path:
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
    path = resolve_ref(ref, Path(models_dir), "model")
    data = load_mapping(path, "model")
    data.setdefault("name", path.stem)
    for key in EXPANDED:
        if isinstance(data.get(key), str):
            data[key] = expand_env(data[key], f"{path}: {key}")
    for key, by_name in (overrides or {}).items():
        if data["name"] in by_name:
            data[key] = by_name[data["name"]]
    return validated(ModelEntry, data, path)


def max_new_tokens(entry: ModelEntry) -> int:
    return int(entry.decoding.get("max_new_tokens", 64))


def open_model(entry: ModelEntry, log=print, who: str = "model"):
    """A loaded backend for the entry (LocalModel or Endpoint: the same calls, `ask` and `answer`);
    `who` opens its messages ("model", "specialist")."""
    if entry.kind == "labels":
        raise FracdataError(f"{who} {entry.name}: a labels entry is a file of answers, not a model to ask")
    if entry.kind == "local":
        from fracdata.inference.local import LocalModel, local_folder, resolved_runtime

        path = local_folder(entry.path, "path", entry.name)
        adapter = local_folder(entry.adapter, "adapter", entry.name) if entry.adapter else None
        rt = resolved_runtime(entry.dtype, entry.fused_patch_embed)
        model = LocalModel(path, adapter, rt["device"], rt["dtype"], entry.image_max_pixels, entry.image_min_pixels,
                           name=f"{who} {entry.name}", max_new_tokens=max_new_tokens(entry),
                           batch_size=entry.batch_size, fused_patch_embed=entry.fused_patch_embed)
        log(f"{who} {entry.name}: loaded {path}" + (f" + adapter {adapter}" if adapter else "")
            + f" ({model.describe()}) in {model.load_s:.1f} s")
        return model
    from fracdata.inference.endpoint import Endpoint

    # A served checkpoint (served_path) gets training's pixels, like the same checkpoint run locally.
    resize = (entry.image_max_pixels, entry.image_min_pixels) if entry.served_path else None
    return Endpoint(entry.base_url, entry.model, entry.api_key_env, entry.decoding, entry.max_retries,
                    entry.timeout_s, name=f"{who} {entry.name}", resize=resize, concurrency=entry.concurrency)
