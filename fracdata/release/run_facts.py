"""What a model card says, read from the files that hold it, each figure with where it came from.

A training run folder (`fracdata train` writes it) holds provenance.json (recipe, command, git,
dataset and its card hash, base model), resolved.yaml (what LlamaFactory ran), trainer_state.json
(steps, losses) and adapter_config.json for a LoRA run. fracbench's metrics.json is read as JSON
(fracdata never imports fracbench): its `models.<name>` row for this checkpoint and the others
scored beside it. Every number the card prints is a `Figure`: its value, the file it was read
from (that file's sha256) and the key inside it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from fracdata.errors import FracdataError
from fracdata.records import sha256_file
from fracdata.untrusted import loads

METRICS = [("micro", "precision"), ("micro", "recall"), ("micro", "f1"), ("macro", "precision"), ("macro", "recall"),
           ("macro", "f1"), ("exact_match", None), ("jaccard", None)]


class _Open(BaseModel):
    model_config = ConfigDict(extra="allow")  # fracbench and `fracdata train` may add keys; the card reads these


class _CI(_Open):
    value: float
    ci_low: float
    ci_high: float


class _Average(_Open):
    precision: _CI
    recall: _CI
    f1: _CI


class _Coverage(_Open):
    n: int
    answered: int
    failed: int = 0
    unparsed: int = 0


class _Strict(_Open):
    micro: _Average


class _Row(_Open):
    """One model's row of fracbench's metrics.json, as far as the card reads it."""
    micro: _Average
    macro: _Average | None = None
    exact_match: _CI | None = None
    jaccard: _CI | None = None
    strict: _Strict | None = None
    coverage: _Coverage
    control: str | None = None


class _Task(_Open):
    name: str = "?"
    version: int | str = "?"


class _Resampling(_Open):
    unit: str = "image"
    clusters: int | None = None


class _Provenance(_Open):
    not_a_score: bool = False
    limit: int | None = None
    models: dict[str, dict] = {}
    task: _Task = _Task()
    resampling: _Resampling = _Resampling()
    gold: str | None = None
    gold_sha256: str | None = None
    n_gold_items: int | None = None
    bootstrap: int | None = None
    date: str | None = None
    fracbench: str | None = None
    git: dict = {}


class _Metrics(_Open):
    models: dict[str, _Row]
    provenance: _Provenance


class _RunProvenance(_Open):
    """provenance.json as `fracdata train` writes it, as far as the card reads it."""
    model: str | None = None
    recipe: str | None = None
    command: str | None = None
    git: dict = {}
    dataset: dict = {}


def _valid(model: type[BaseModel], obj: dict, path: Path, what: str) -> dict:
    """obj checked against the shape the card reads (then used as plain JSON); else one error."""
    try:
        return model.model_validate(obj).model_dump(exclude_none=False)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "file"
        raise FracdataError(f"{path}: not a {what} ({where}: {err['msg']})") from None


@dataclass
class Source:
    """One file the card reads: its label in the card, path and sha256."""
    label: str
    path: Path
    sha256: str
    note: str = ""


@dataclass
class Figure:
    name: str
    value: object
    source: Source
    key: str
    ci: tuple[float, float] | None = None


@dataclass
class Facts:
    run: Path
    sources: dict[str, Source] = field(default_factory=dict)
    figures: list[Figure] = field(default_factory=list)
    provenance: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    adapter: dict | None = None
    build: dict | None = None
    metrics: dict | None = None
    bench_model: str | None = None

    def source(self, label: str, path: Path, note: str = "") -> Source:
        s = Source(label, path, sha256_file(path), note)
        self.sources[label] = s
        return s

    def add(self, name: str, value, source: Source, key: str, ci=None) -> Figure:
        f = Figure(name, value, source, key, ci)
        self.figures.append(f)
        return f

    def get(self, name: str) -> Figure | None:
        return next((f for f in self.figures if f.name == name), None)


def _json(path: Path, what: str) -> dict:
    try:
        obj = loads(path.read_text(encoding="utf-8"))
    except OSError as e:
        raise FracdataError(f"{path}: cannot read the {what} ({e.strerror or e})") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FracdataError(f"{path}: the {what} is not valid JSON ({e})") from None
    if not isinstance(obj, dict):
        raise FracdataError(f"{path}: the {what} is not a JSON object")
    return obj


def read_run(run: Path) -> Facts:
    """The run folder's own files: provenance, resolved config, adapter config, trainer state, dataset build."""
    if not (run / "provenance.json").is_file():
        raise FracdataError(f"{run}: not a `fracdata train` run folder (no provenance.json)")
    if not (run / "resolved.yaml").is_file():
        raise FracdataError(f"{run}: no resolved.yaml (the run folder `fracdata train` writes has one)")
    weights = [p.name for p in run.iterdir() if p.name.endswith(".safetensors")]
    if not weights:
        raise FracdataError(f"{run}: no weights (*.safetensors): the run has not finished training")
    facts = Facts(run)
    prov_src = facts.source("provenance.json", run / "provenance.json", "written by `fracdata train`")
    facts.provenance = _valid(_RunProvenance, _json(run / "provenance.json", "run provenance"), run / "provenance.json",
                              "provenance.json written by `fracdata train`")
    cfg_src = facts.source("resolved.yaml", run / "resolved.yaml", "the config LlamaFactory ran")
    try:
        facts.config = yaml.safe_load((run / "resolved.yaml").read_text(encoding="utf-8")) or {}
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise FracdataError(f"{run / 'resolved.yaml'}: not valid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(facts.config, dict):
        raise FracdataError(f"{run / 'resolved.yaml'}: not a LlamaFactory config (a YAML mapping)")
    for key in ("finetuning_type", "lora_rank", "lora_alpha", "lora_target", "learning_rate", "num_train_epochs",
                "max_steps", "per_device_train_batch_size", "gradient_accumulation_steps", "cutoff_len",
                "image_max_pixels", "template", "dataset", "freeze_vision_tower", "seed"):
        if key in facts.config:
            facts.add(key, facts.config[key], cfg_src, key)
    if (run / "adapter_config.json").is_file():
        facts.source("adapter_config.json", run / "adapter_config.json", "written by peft")
        facts.adapter = _json(run / "adapter_config.json", "adapter config")
    if (run / "trainer_state.json").is_file():
        st_src = facts.source("trainer_state.json", run / "trainer_state.json", "written by the transformers Trainer")
        state = _json(run / "trainer_state.json", "trainer state")
        facts.add("training steps", state.get("global_step"), st_src, "global_step")
        history = state.get("log_history") if isinstance(state.get("log_history"), list) else []

        def number(h, k) -> bool:
            return isinstance(h, dict) and isinstance(h.get(k), (int, float)) and not isinstance(h.get(k), bool)
        losses = [(i, h["loss"]) for i, h in enumerate(history) if number(h, "loss")]
        if losses:
            facts.add("final training loss", round(losses[-1][1], 4), st_src, f"log_history[{losses[-1][0]}].loss")
        evals = [(i, h["eval_loss"]) for i, h in enumerate(history) if number(h, "eval_loss")]
        if evals:
            facts.add("last evaluation loss", round(evals[-1][1], 4), st_src, f"log_history[{evals[-1][0]}].eval_loss")
    ds = (facts.provenance.get("dataset") or {}).get("dir")
    if ds and (Path(ds) / "build.json").is_file():
        b_src = facts.source("build.json", Path(ds) / "build.json", "the training dataset's build summary")
        facts.build = _json(Path(ds) / "build.json", "dataset build summary")
        names, rows = facts.config.get("dataset") or "", facts.build.get("rows")
        for name in str(names).split(","):
            if isinstance(rows, dict) and name.strip() in rows:
                facts.add(f"training rows ({name.strip()})", facts.build["rows"][name.strip()], b_src, f"rows.{name.strip()}")
    facts.add("provenance git commit", (facts.provenance.get("git") or {}).get("commit"), prov_src, "git.commit")
    return facts


def _same(a, b) -> bool:
    try:
        return a is not None and Path(a).resolve() == Path(b).resolve()
    except (OSError, TypeError, ValueError):
        return False


def read_metrics(facts: Facts, path: Path, name: str | None) -> None:
    """fracbench's metrics.json: this checkpoint's row (by --bench-model, else the one row whose
    checkpoint path or adapter is the run folder), and the other rows for comparison."""
    m = _valid(_Metrics, _json(path, "fracbench metrics.json"), path, "fracbench metrics.json")
    models, prov = m["models"], m["provenance"]
    if not models:
        raise FracdataError(f"{path}: not a fracbench metrics.json (no models)")
    if prov.get("not_a_score"):
        raise FracdataError(f"{path}: a `--limit {prov.get('limit')}` run, labelled NOT A SCORE: score the whole gold "
                            "set before putting figures on a model card")
    if name is None:
        ident = {n: (prov["models"].get(n) or {}).get("identity") for n in models}
        ident = {n: i if isinstance(i, dict) else {} for n, i in ident.items()}
        mine = [n for n, i in ident.items() if not models[n].get("control")
                and (_same(i.get("adapter"), facts.run) or (not i.get("adapter") and _same(i.get("path"), facts.run)))]
        if len(mine) != 1:
            found = f"{len(mine)} rows ({', '.join(mine)})" if mine else "no row"
            raise FracdataError(f"{path}: {found} scored the checkpoint {facts.run}: name it with --bench-model "
                                f"(one of {', '.join(models)})")
        name = mine[0]
    if name not in models:
        raise FracdataError(f"--bench-model {name}: not in {path} (it has {', '.join(models)})")
    src = facts.source("metrics.json", path, f"written by fracbench {prov.get('fracbench', '?')} score on "
                                             f"{prov.get('date', '?')}, git {(prov.get('git') or {}).get('commit') or '?'}")
    facts.metrics, facts.bench_model = m, name
    row = models[name]
    for avg, metric in METRICS:
        block = row.get(avg) if metric is None else (row.get(avg) or {}).get(metric)
        if isinstance(block, dict) and "value" in block:
            label = avg.replace("_", " ") if metric is None else f"{avg} {metric}"
            key = f"models.{name}.{avg}" + (f".{metric}" if metric else "")
            facts.add(label, block["value"], src, key, (block.get("ci_low"), block.get("ci_high")))
    strict = ((row.get("strict") or {}).get("micro") or {}).get("precision")
    if isinstance(strict, dict):
        facts.add("strict micro precision", strict["value"], src, f"models.{name}.strict.micro.precision",
                  (strict.get("ci_low"), strict.get("ci_high")))
    cov = row.get("coverage") or {}
    for k in ("n", "answered", "failed", "unparsed"):
        if k in cov:
            facts.add(f"coverage {k}", cov[k], src, f"models.{name}.coverage.{k}")
