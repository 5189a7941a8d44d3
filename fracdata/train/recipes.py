"""LlamaFactory recipes: resolve `extends:` overlays and `--set`, validate with LlamaFactory's parser.

A recipe is plain LlamaFactory YAML. One extra key, `extends: <path>`, names a base recipe
(relative to the overlay file); the overlay's keys replace the base's, and `extends` is gone from
the resolved result, so `fracdata recipes render` output runs with plain `llamafactory-cli`.

Validation reports every problem at once, one line per key: unknown keys (LlamaFactory's own
argument dataclasses are the schema), values of the wrong type or outside the allowed choices,
then the dataclasses' own cross-field checks and the LlamaFactory rules that would otherwise only
fail (or silently do nothing) once training has started.
"""

from __future__ import annotations

import difflib
import json
from pathlib import Path

import yaml

from fracdata.errors import FracdataError
from fracdata.files import load_mapping
from fracdata.provenance import shipped

# The checkout's llamafactory_configs/ in a checkout; from a wheel, the copy installed inside the package.
RECIPES_ROOT = shipped("llamafactory_configs")
SMOKE_RECIPE = RECIPES_ROOT / "smoke" / "tiny_qwen3vl_lora_sft.yaml"
EXTENDS = "extends"


def find_recipes(root: Path = RECIPES_ROOT) -> list[Path]:
    """Every recipe under `root`, recursively (YAML only; DeepSpeed JSON and sbatch templates are not recipes)."""
    return sorted(p for p in Path(root).rglob("*.yaml") if p.is_file())


def locate(name: str | Path) -> Path:
    """A recipe path as given, or relative to llamafactory_configs/ (so `ablations/no_rare.yaml` works)."""
    for cand in (Path(name), RECIPES_ROOT / name):
        if cand.is_file():
            return cand
    raise FracdataError(f"recipe {name} not found (looked in . and {RECIPES_ROOT}); "
                        f"`fracdata recipes list` shows the shipped ones")


def load(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict:
    """The recipe with its `extends` chain merged (base first, overlay keys win), `extends` removed."""
    path = Path(path).resolve()
    if path in _seen:
        chain = " -> ".join(str(p) for p in (*_seen, path))
        raise FracdataError(f"{path}: `extends` loops: {chain}")
    data = load_mapping(path, "recipe")
    base_name = data.pop(EXTENDS, None)
    if base_name is None:
        return data
    base_path = (path.parent / base_name).resolve()
    if not base_path.is_file():
        raise FracdataError(f"{path}: extends {base_name}, which does not exist ({base_path})")
    merged = load(base_path, (*_seen, path))
    merged.update(data)  # order: base keys in place, new keys appended
    return merged


def parse_sets(sets: list[str] | None) -> dict:
    """`--set key=value` pairs; values are YAML scalars (`--set lora_rank=8`, `--set bf16=false`)."""
    out = {}
    for item in sets or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise FracdataError(f"--set {item!r}: expected key=value")
        try:
            out[key.strip()] = yaml.safe_load(value) if value.strip() else None
        except (yaml.YAMLError, RecursionError) as e:
            raise FracdataError(f"--set {key.strip()}=...: the value is not a YAML scalar "
                                f"({str(e).splitlines()[0] if isinstance(e, yaml.YAMLError) else 'nested too deeply'})") from None
    return out


def kind(config: dict) -> str:
    """Which LlamaFactory command reads this recipe: train, export (LoRA merge) or infer (chat/api)."""
    if "export_dir" in config:
        return "export"
    if "stage" in config or config.get("do_train"):
        return "train"
    return "infer"


def _parser(recipe_kind: str):
    from transformers import HfArgumentParser

    from llamafactory.hparams.parser import _INFER_ARGS, _TRAIN_ARGS

    return HfArgumentParser(_TRAIN_ARGS if recipe_kind == "train" else _INFER_ARGS)


def _coerce(key: str, value, action) -> tuple[object, str | None]:
    """(value converted to the field's type, error or None). YAML reads `1e-5` as a string, for one."""
    import argparse

    conv = action.type
    if value is None or conv is None or action.nargs in ("+", "*"):
        return value, None
    is_bool = getattr(conv, "__name__", "") == "string_to_bool"
    try:
        if isinstance(value, str):
            value = conv(value)
        elif is_bool:
            if not isinstance(value, bool):
                raise ValueError
        elif conv in (int, float):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ValueError
            if conv is int:
                if not float(value).is_integer():
                    raise ValueError
                value = int(value)
    except (ValueError, TypeError, argparse.ArgumentTypeError):
        want = "true/false" if is_bool else getattr(conv, "__name__", "a valid value")
        return value, f"{key}: {value!r} is not {want}"
    if action.choices is not None and value not in action.choices:
        return value, f"{key}: {value!r} is not one of {', '.join(map(str, action.choices))}"
    return value, None


def _deepspeed_error(value) -> str | None:
    path = Path(str(value))
    if not path.is_file():
        return f"deepspeed: {value} does not exist"
    try:
        stage = json.loads(path.read_text())["zero_optimization"]["stage"]
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        return f"deepspeed: {value} is not a DeepSpeed JSON with zero_optimization.stage ({type(e).__name__})"
    return None if stage in (0, 1, 2, 3) else f"deepspeed: {value} has zero_optimization.stage {stage!r}"


def _rule_errors(cfg: dict) -> list[str]:
    """LlamaFactory/transformers rules that otherwise surface mid-run or silently disable a feature."""
    errs = []
    evaluates = cfg.get("eval_strategy", "no") != "no"
    if evaluates and not cfg.get("val_size") and not cfg.get("eval_dataset"):
        errs.append("eval_strategy: evaluation needs val_size or eval_dataset")
    if cfg.get("val_size") and cfg.get("eval_dataset"):
        errs.append("val_size: cannot be combined with eval_dataset (LlamaFactory refuses both); keep eval_dataset: val, "
                    "the builder's grouped split")
    cutoff = cfg.get("cutoff_len")
    if (cfg.get("packing") or cfg.get("neat_packing")) and isinstance(cutoff, int) and cutoff % 8:
        errs.append(f"cutoff_len: {cutoff} is not a multiple of 8, which LlamaFactory's packing path needs "
                    f"(use {-(-cutoff // 8) * 8})")
    if cfg.get("early_stopping_steps") is not None:
        if not evaluates:
            errs.append("early_stopping_steps: needs eval_strategy steps or epoch (it counts evaluations)")
        if cfg.get("metric_for_best_model") is None:
            errs.append("early_stopping_steps: needs metric_for_best_model (e.g. eval_loss)")
        if not cfg.get("load_best_model_at_end"):
            errs.append("early_stopping_steps: needs load_best_model_at_end: true")
        if cfg.get("deepspeed") and cfg.get("save_only_model"):
            errs.append("save_only_model: must be false with DeepSpeed and early stopping (best checkpoint is reloaded)")
    if cfg.get("predict_with_generate") and cfg.get("deepspeed"):
        errs.append("predict_with_generate: refused under DeepSpeed ZeRO-3 (only eval_loss during training)")
    return errs


def validate(config: dict, source: str = "recipe") -> dict:
    """Check every key with LlamaFactory's parser; return the config with values converted to their types.

    Raises FracdataError listing every error, one line each: `<source>: <key>: <reason>`.
    """
    import torch

    from llamafactory.data.template import TEMPLATES

    recipe_kind = kind(config)
    parser = _parser(recipe_kind)
    actions = {a.dest: a for a in parser._actions if a.option_strings}
    errors, typed = [], {}
    for key, value in config.items():
        if key not in actions:
            close = difflib.get_close_matches(key, actions, n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            errors.append(f"{key}: unknown LlamaFactory {recipe_kind} key{hint}")
            continue
        typed[key], err = _coerce(key, value, actions[key])
        if err:
            errors.append(err)
    if typed.get("template") is not None and typed["template"] not in TEMPLATES:
        close = difflib.get_close_matches(str(typed["template"]), TEMPLATES, n=1)
        errors.append(f"template: {typed['template']!r} is not a LlamaFactory template"
                      + (f" (did you mean {close[0]}?)" if close else ""))
    if typed.get("deepspeed"):
        err = _deepspeed_error(typed["deepspeed"])
        if err:
            errors.append(err)
    errors += _rule_errors(typed)
    if not errors:
        # The dataclasses' own cross-field checks (e.g. save_steps a multiple of eval_steps).
        # DeepSpeed is left out here: parsing it would switch this process into ZeRO-3 mode.
        # bf16/fp16 are checked as if on CPU when this machine has no GPU (a login node).
        probe = {k: v for k, v in typed.items() if k != "deepspeed"}
        if recipe_kind == "train" and not torch.cuda.is_available() and (probe.get("bf16") or probe.get("fp16")):
            probe["use_cpu"] = True
        try:
            parser.parse_dict(probe, allow_extra_keys=False)
        except (ValueError, TypeError) as e:
            errors.append(" ".join(str(e).split()))
    if errors:
        raise FracdataError("\nerror: ".join(f"{source}: {e}" for e in errors))
    return typed


def resolve(name: str | Path, sets: list[str] | None = None, overrides: dict | None = None) -> tuple[Path, dict]:
    """(recipe path, merged config with --set and CLI overrides applied); not yet validated."""
    path = locate(name)
    config = load(path)
    config.update({k: v for k, v in (overrides or {}).items() if v is not None})
    config.update(parse_sets(sets))
    if config.get("deepspeed"):
        config["deepspeed"] = str(_find_file(config["deepspeed"], path))
    return path, config


def _find_file(value, recipe: Path) -> Path:
    """A relative DeepSpeed path as LlamaFactory reads it (from the working directory), else from
    the recipe's folder upwards, so recipes name `llamafactory_configs/deepspeed/…` from anywhere."""
    p = Path(str(value)).expanduser()
    if p.is_absolute() or p.exists():
        return p.resolve() if p.exists() else p
    for folder in Path(recipe).resolve().parents:
        if (folder / p).exists():
            return (folder / p).resolve()
    return p


def sections(path: str | Path) -> dict[str, str]:
    """key -> the `### section` it sits under, through the `extends` chain (overlay wins)."""
    import re

    path = Path(path).resolve()
    out, current, base = {}, "other", None
    for line in path.read_text().splitlines():
        if m := re.match(r"###\s*(\w+)", line):
            current = m.group(1)
        elif m := re.match(r"([A-Za-z_][\w.-]*)\s*:", line):
            out[m.group(1)] = current
            if m.group(1) == EXTENDS:
                base = yaml.safe_load(line.split(":", 1)[1])
    if base:
        out = {**sections(path.parent / base), **out}
    out.pop(EXTENDS, None)
    return out


def render(config: dict, section_of: dict[str, str] | None = None, header: str = "") -> str:
    """YAML grouped under `### section` comments (in first-appearance order), as the recipes are."""
    section_of = section_of or {}
    groups: dict[str, dict] = {}
    for key, value in config.items():
        groups.setdefault(section_of.get(key, "overrides"), {})[key] = value
    parts = [header.rstrip("\n")] if header else []
    for name, keys in groups.items():
        parts.append(f"### {name}\n" + yaml.safe_dump(keys, sort_keys=False, default_flow_style=False, width=1000))
    return "\n".join(parts)


# --- CLI: fracdata recipes {list,render,check} -------------------------------------------------

def add_arguments(parser) -> None:
    sub = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    sub.add_parser("list", help="list the shipped recipes (recursively) with their kind")
    r = sub.add_parser("render", help="print the resolved YAML (overlays merged, `extends` removed)")
    r.add_argument("recipe", help="recipe path, or relative to llamafactory_configs/")
    r.add_argument("--set", dest="sets", action="append", metavar="KEY=VALUE", help="override a key (repeatable)")
    c = sub.add_parser("check", help="resolve and validate recipes with LlamaFactory's parser (default: all)")
    c.add_argument("recipes", nargs="*", help="recipes to check (default: every one under llamafactory_configs/)")


def artifact(args) -> bool:
    """`list` and `render` print for programs (`> run.yaml`); fracdata.cli keeps their stdout clean."""
    return args.action in ("list", "render")


def run(args) -> int:
    import sys

    from fracdata.cli import artifact_stream

    if args.action == "list":
        recipes = find_recipes()
        out = artifact_stream(args)
        for p in recipes:
            out.write(f"{kind(load(p)):7s} {p.relative_to(RECIPES_ROOT)}\n")
        print(f"{len(recipes)} recipes under {RECIPES_ROOT}", file=sys.stderr)
        return 0
    if args.action == "render":
        path, config = resolve(args.recipe, args.sets)
        config = validate(config, str(path))
        header = f"# Resolved from {path} by `fracdata recipes render`" + \
            (f" with --set {' '.join(args.sets)}" if args.sets else "") + "\n"
        artifact_stream(args).write(render(config, sections(path), header))
        if kind(config) == "train" and "dataset_dir" not in config:
            print(f"note: {path} sets no dataset_dir, so llamafactory-cli reads ./data; add "
                  f"--set dataset_dir=data/processed/<name> (fracdata train asks for --dataset-dir)", file=sys.stderr)
        return 0
    names = args.recipes or find_recipes()
    errors = []
    for name in names:
        try:
            path, config = resolve(name)
            validate(config, str(path))
            print(f"ok      {kind(config):7s} {path}")
        except FracdataError as e:
            errors.append(str(e))
    print(f"checked {len(names)} recipes: {len(names) - len(errors)} ok, {len(errors)} with errors")
    if errors:
        raise FracdataError("\nerror: ".join(errors))
    return 0
