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

from fracdata.errors import FracdataError
from fracdata.records import sha256_file

METRICS = [("micro", "precision"), ("micro", "recall"), ("micro", "f1"), ("macro", "precision"), ("macro", "recall"),
           ("macro", "f1"), ("exact_match", None), ("jaccard", None)]


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
        obj = json.loads(path.read_text(encoding="utf-8"))
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
    facts.provenance = _json(run / "provenance.json", "run provenance")
    cfg_src = facts.source("resolved.yaml", run / "resolved.yaml", "the config LlamaFactory ran")
    facts.config = yaml.safe_load((run / "resolved.yaml").read_text(encoding="utf-8")) or {}
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
        history = state.get("log_history") or []
        losses = [(i, h["loss"]) for i, h in enumerate(history) if isinstance(h, dict) and "loss" in h]
        if losses:
            facts.add("final training loss", round(losses[-1][1], 4), st_src, f"log_history[{losses[-1][0]}].loss")
        evals = [(i, h["eval_loss"]) for i, h in enumerate(history) if isinstance(h, dict) and "eval_loss" in h]
        if evals:
            facts.add("last evaluation loss", round(evals[-1][1], 4), st_src, f"log_history[{evals[-1][0]}].eval_loss")
    ds = (facts.provenance.get("dataset") or {}).get("dir")
    if ds and (Path(ds) / "build.json").is_file():
        b_src = facts.source("build.json", Path(ds) / "build.json", "the training dataset's build summary")
        facts.build = _json(Path(ds) / "build.json", "dataset build summary")
        names = facts.config.get("dataset") or ""
        for name in str(names).split(","):
            if name.strip() in (facts.build.get("rows") or {}):
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
    m = _json(path, "fracbench metrics.json")
    models, prov = m.get("models"), m.get("provenance")
    if not isinstance(models, dict) or not isinstance(prov, dict) or not models:
        raise FracdataError(f"{path}: not a fracbench metrics.json (no models/provenance)")
    if prov.get("not_a_score"):
        raise FracdataError(f"{path}: a `--limit {prov.get('limit')}` run, labelled NOT A SCORE: score the whole gold "
                            "set before putting figures on a model card")
    if name is None:
        ident = {n: ((prov.get("models") or {}).get(n) or {}).get("identity") or {} for n in models}
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
