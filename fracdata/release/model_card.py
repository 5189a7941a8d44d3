"""`fracdata release model`: the model card of a trained run, in the Hub's model-card format.

The YAML is huggingface_hub's own (ModelCardData with EvalResults: `model-index`), so the Hub and
its parser read it: base_model (a Hub id; a local base is named in the body only), library_name
(`peft` for a LoRA adapter, `transformers` for a full fine-tune), licence, pipeline tag, datasets,
and fracbench's point estimates with their 95% CIs and coverage in `metric_args`. The body gives
the recipe and its command, the training data and its hashes, every fracbench figure with its CI
beside the other models scored with it, limitations, and a table naming the file and key each
figure was read from (run_facts.py).
"""

from __future__ import annotations

from pathlib import Path

from fracdata.release.run_facts import Facts

TASK = ("image-text-to-text", "Fractography feature recognition (fracdata taxonomy ids)")
METRIC_TYPES = {"micro precision": "precision", "micro recall": "recall", "micro f1": "f1", "macro precision": "precision",
                "macro recall": "recall", "macro f1": "f1", "exact match": "exact_match", "jaccard": "jaccard",
                "strict micro precision": "precision"}


def _hub_id(name: str | None) -> bool:
    return bool(name) and name.count("/") == 1 and not name.startswith((".", "/", "~")) and not Path(name).exists()


def base_model(facts: Facts, given: str | None) -> tuple[str, str | None]:
    """(the base as trained from, its Hub id or None)."""
    trained = (facts.adapter or {}).get("base_model_name_or_path") or facts.provenance.get("model") or "unknown"
    if given:
        return trained, given
    return trained, trained if _hub_id(trained) else None


def eval_results(facts: Facts, model_name: str):
    from huggingface_hub import EvalResult

    if facts.metrics is None:
        return None
    prov = facts.metrics["provenance"]
    task = prov.get("task") or {}
    cov = {k: facts.get(f"coverage {k}").value for k in ("n", "answered", "failed", "unparsed") if facts.get(f"coverage {k}")}
    out = []
    for f in facts.figures:
        if f.name not in METRIC_TYPES or f.source.label != "metrics.json":
            continue
        args = {"ci95": [round(c, 4) for c in f.ci] if f.ci and None not in f.ci else None,
                "bootstrap": prov.get("bootstrap"), "resampling": (prov.get("resampling") or {}).get("unit"),
                "coverage": f"{cov.get('answered')}/{cov.get('n')}" if cov else None}
        out.append(EvalResult(
            task_type=TASK[0], task_name=TASK[1], dataset_type=f"fracbench-{task.get('name', 'task')}",
            dataset_name=f"fracbench {task.get('name', '?')} v{task.get('version', '?')} gold ({prov.get('n_gold_items')} images)",
            dataset_split="test", dataset_revision=prov.get("gold_sha256"), metric_type=METRIC_TYPES[f.name],
            metric_name=f.name, metric_value=round(float(f.value), 4),
            metric_args={k: v for k, v in args.items() if v is not None}))
    return out or None


def _ci(f) -> str:
    if f is None:
        return "-"
    if f.ci and None not in f.ci:
        return f"{f.value:.3f} [{f.ci[0]:.3f}, {f.ci[1]:.3f}]"
    return f"{f.value}"


def _table(header, rows) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(str(c) for c in r) + " |" for r in rows])


def render(facts: Facts, *, licence: str, licence_note: str, model_name: str, hub_base: str | None,
           trained_base: str, dataset_repo: str | None) -> str:
    from huggingface_hub import ModelCardData

    lora = facts.adapter is not None
    data = ModelCardData(
        model_name=model_name, base_model=hub_base, library_name="peft" if lora else "transformers",
        license=licence, pipeline_tag="image-text-to-text", datasets=[dataset_repo] if dataset_repo else None,
        tags=["fractography", "materials-science", "llama-factory", "fracdata"] + (["lora"] if lora else []),
        eval_results=eval_results(facts, model_name))
    if licence == "other":
        data.license_name = "unstated"  # the Hub asks for a name beside `other`; the body says why
    if hub_base:
        data.base_model_relation = "adapter" if lora else "finetune"
    prov, cfg = facts.provenance, facts.config
    ds = prov.get("dataset") or {}
    parts = ["---\n" + data.to_yaml() + "\n---", f"# {model_name}"]
    targets = facts.adapter.get("target_modules") or [] if lora else []
    targets = [targets] if isinstance(targets, str) else list(targets)  # peft takes a regex string or a list
    kinds = sorted({str(t).rsplit(".", 1)[-1] for t in targets})
    kind = (f"A LoRA adapter (rank {facts.adapter.get('r')}, alpha {facts.adapter.get('lora_alpha')}, on {len(targets)} "
            f"modules: {', '.join(kinds) or '?'})" if lora
            else f"A {cfg.get('finetuning_type', 'full')} fine-tune")
    parts.append(f"{kind} of `{trained_base}`" + ("" if hub_base else " (a local model, not a Hub id: pass "
                 "`--base-model ID` when it has one)") + ", trained with LlamaFactory by `fracdata train` to name the "
                 "fracture-surface features a fractograph shows, as fracdata taxonomy ids: it answers one line, "
                 "`Features: <id>, <id>` or `Features: none`.")
    parts += ["## Licence", licence_note]
    parts += ["## How to use", _usage(lora, trained_base, facts)]
    parts += ["## Training", f"Recipe `{prov.get('recipe')}`, run as:", f"```\n{prov.get('command')}\n```",
              f"with template `{cfg.get('template')}`; `resolved.yaml` is the config LlamaFactory ran "
              f"(sha256 `{facts.sources['resolved.yaml'].sha256}`). Git `{(prov.get('git') or {}).get('commit')}`"
              + (" (uncommitted changes)" if (prov.get("git") or {}).get("dirty") else "") + ".",
              _table(["setting", "value"], [[f.name, f.value] for f in facts.figures if f.source.label in
                                             ("resolved.yaml", "trainer_state.json")])]
    data_lines = [f"Dataset `{ds.get('names')}` from `{ds.get('dir')}`: dataset card sha256 `{ds.get('card_sha256')}`, "
                  f"dataset_info.json sha256 `{ds.get('dataset_info_sha256')}`"]
    if facts.build:
        lic = ", ".join(f"{k} {v}" for k, v in (facts.build.get("licences") or {}).items())
        data_lines.append(f", build input hash `{facts.build.get('input_hash')}`. Image licences: {lic or 'not recorded'}")
    if dataset_repo:
        data_lines.append(f". Released on the Hub as [`{dataset_repo}`](https://huggingface.co/datasets/{dataset_repo})")
    parts += ["## Training data", "".join(data_lines) + "."]
    parts += ["## Evaluation", _evaluation(facts)]
    parts += ["## Limitations", _limitations(facts, lora)]
    parts += ["## Provenance of every figure", _provenance(facts)]
    return "\n\n".join(parts) + "\n"


def _usage(lora: bool, base: str, facts: Facts) -> str:
    from fracdata.answer import render_prompt

    prompt = render_prompt()
    load = ("from peft import PeftModel\nmodel = AutoModelForImageTextToText.from_pretrained(BASE)\n"
            "model = PeftModel.from_pretrained(model, ADAPTER)" if lora
            else "model = AutoModelForImageTextToText.from_pretrained(CHECKPOINT)")
    return ("```python\nfrom transformers import AutoModelForImageTextToText, AutoProcessor\n" + load + "\n```\n\n"
            f"Ask with exactly the training prompt (the image first): `{prompt}`, in the `{facts.config.get('template')}` "
            f"chat template, images resized to at most {facts.config.get('image_max_pixels', 768 * 768)} pixels as in "
            "training; greedy decoding. fracbench scores it the same way (docs/bench.md), and checks before scoring that "
            "an adapter changes the base model's answers at all.")


def _evaluation(facts: Facts) -> str:
    if facts.metrics is None:
        return "Not scored here: pass `--metrics reports/bench/metrics.json` (fracbench) to put the scores on the card."
    prov, models = facts.metrics["provenance"], facts.metrics["models"]
    task = prov.get("task") or {}
    res = prov.get("resampling") or {}
    head = (f"fracbench task `{task.get('name')}` v{task.get('version')} on {prov.get('n_gold_items')} gold images "
            f"(`{prov.get('gold')}`, sha256 `{prov.get('gold_sha256')}`), as `{facts.bench_model}`. Point estimates with "
            f"95% percentile-bootstrap CIs ({prov.get('bootstrap')} resamples over {res.get('clusters', '?')} "
            f"{res.get('unit', 'image')}s); coverage = answers the parser could read.")
    mine = [[f.name, _ci(f)] for f in facts.figures if f.source.label == "metrics.json" and not f.name.startswith("coverage")]
    cov = facts.get("coverage answered"), facts.get("coverage n")
    mine.append(["coverage (answered / n)", f"{cov[0].value}/{cov[1].value}" if all(cov) else "-"])
    rows = []
    for n, m in models.items():
        mi, c = m.get("micro") or {}, m.get("coverage") or {}
        cells = [f"{mi[k]['value']:.3f} [{mi[k]['ci_low']:.3f}, {mi[k]['ci_high']:.3f}]" if k in mi else "-"
                 for k in ("precision", "recall", "f1")]
        rows.append([f"**{n}**" if n == facts.bench_model else n, cells[0], f"{c.get('answered', '?')}/{c.get('n', '?')}",
                     cells[1], cells[2]])
    return "\n\n".join([head, _table(["metric", "value [95% CI]"], mine),
                        "Every model scored beside it, on the same images:",
                        _table(["model", "micro precision", "coverage", "micro recall", "micro F1"], rows)])


def _limitations(facts: Facts, lora: bool) -> str:
    items = ["It names only the features of the fracdata taxonomy (53, in 8 groups); anything else it cannot say, and "
             "`Features: none` means none of those.",
             "Its training labels come from the dataset's labeller (a teacher model or people, see the dataset card), "
             "with that labeller's errors; the gold benchmark is the only hand-checked reference."]
    if facts.metrics is not None:
        n = facts.metrics["provenance"].get("n_gold_items")
        items.append(f"The scores rest on {n} gold images: read the CIs, not the point estimates alone, and compare "
                     "models by the paired tests of the fracbench report.")
        blank = f"{facts.bench_model}-blank"
        if blank in facts.metrics["models"]:
            b = facts.metrics["models"][blank]["micro"]["f1"]["value"]
            items.append(f"Shown blank gray images of the same sizes it scores micro F1 {b:.3f} (row `{blank}`): what it "
                         "gets right without looking at the image.")
    if "tiny" in str(facts.provenance.get("model", "")).lower():
        items.append("The base is a tiny random model built for tests and the demo, trained on synthetic images: "
                     "never report its scores as a fractography result.")
    items.append("It is an aid to a fractographer, not a failure analysis: it does not locate origins, measure, or "
                 "say why a part failed.")
    return "\n".join(f"- {i}" for i in items)


def _provenance(facts: Facts) -> str:
    rows = [[f.name, _ci(f) if f.ci else f.value, f"`{f.source.label}`", f"`{f.key}`"] for f in facts.figures]
    files = [[f"`{s.label}`", f"`{s.path}`", f"`{s.sha256}`", s.note] for s in facts.sources.values()]
    return "\n\n".join([_table(["figure", "value", "file", "key"], rows), "Files read:",
                        _table(["file", "path", "sha256", "what"], files),
                        "Written by `fracdata release model`; the numbers above are copied from these files, none typed."])
