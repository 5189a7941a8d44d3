"""`fracbench export`: the benchmark for other harnesses (docs/bench.md, "Other harnesses").

    fracbench export --format lmms-eval  [--task T] [--gold G] [--prompt VARIANT] [--out DIR]
    fracbench export --format vlmevalkit [--task T] [--gold G] [--prompt VARIANT] [--out DIR]

lmms-eval: DIR/<task>/ holds <task>.yaml (a `generate_until` task over a local Parquet file),
utils.py (doc_to_visual, doc_to_text, process_results and one aggregation per metric: a verbatim
copy of fracbench/lmms_task_utils.py), the code they score with, copied (VENDORED: fracdata's
answer parser, taxonomy and agreement helpers, fracbench's metrics; verbatim but for their imports
of each other; the taxonomy's data as taxonomy.json), and test.parquet: one row per gold image with
its image (as fracbench feeds it: fracdata's normalisation, as PNG), question (the task prompt
without its `<image>` marker), answer, features and id. Run it with
`lmms-eval --include_path DIR --tasks <task> ...`.
VLMEvalKit: DIR/<task>.tsv with index, image (base64 PNG), question, answer, plus id and features.
Both carry the prompt fracbench sends; harnesses put the image before the text, where the
training prompt has it.
"""

from __future__ import annotations

import ast
import base64
import csv
import json
import re
import shutil
from pathlib import Path

from fracdata.errors import FracdataError

HERE = Path(__file__).resolve().parent
DEFAULT_OUT = "reports/export"
# The code the exported task scores with: exported name -> (package, module file). Copied verbatim
# but for their module-level imports of each other (`from fracdata.agreement import` -> `from
# fracdata_agreement import`), since the user has neither package.
VENDORED = {"fracdata_answer": ("fracdata", "answer.py"), "fracdata_taxonomy": ("fracdata", "taxonomy.py"),
            "fracdata_agreement": ("fracdata", "agreement.py"), "fracbench_metrics": ("fracbench", "metrics.py")}


def add_arguments(p) -> None:
    from fracbench.infer import DEFAULT_TASK

    p.add_argument("--format", required=True, choices=["lmms-eval", "vlmevalkit"], help="the harness to export for")
    p.add_argument("--task", default=DEFAULT_TASK, help=f"task name or YAML (default {DEFAULT_TASK})")
    p.add_argument("--gold", help="gold JSONL (default: the task's `gold`)")
    p.add_argument("--prompt", help="the task's prompt variant (default: the task's default_prompt)")
    p.add_argument("--max-new-tokens", type=int, default=128, help="lmms-eval generation cap (default 128)")
    p.add_argument("--out", help=f"output folder (default {DEFAULT_OUT}/<format>)")


def _png(item) -> bytes:
    """The gold image as fracbench feeds it (fracdata's normalisation), as PNG: its pixel id is the item's id."""
    from fracdata.images import ImageError, encode_png, open_normalised

    try:
        return encode_png(open_normalised(item.image))
    except ImageError as e:
        raise FracdataError(f"{item.image}: cannot read the gold image: {e}") from None


def _question(prompt: str) -> str:
    if not prompt.startswith("<image>"):
        raise FracdataError("the prompt does not start with <image>: harnesses put the image before the text, so the "
                            "exported question would not be what fracbench sends; choose a variant that starts with it")
    return prompt.removeprefix("<image>")


def vendored(text: str) -> str:
    """A module's text with its module-level `from fracdata.X import` / `from fracbench.X import`
    pointing at the exported copies (function-level imports are left: those functions never run there)."""
    return re.sub(r"^from (fracdata|fracbench)\.(\w+) import", r"from \1_\2 import", text, flags=re.M)


def _standalone(path: Path) -> None:
    """A copied module may import, at load time, only the other copies: never fracdata or fracbench."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
            [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        for n in names:
            if n.split(".")[0] in ("fracdata", "fracbench") or (n.startswith(("fracdata_", "fracbench_")) and n not in VENDORED):
                raise RuntimeError(f"internal: {path} imports {n} at module level; the exported task would not load")


def lmms_eval(task, items, question: str, answers: list[str], out: Path, max_new_tokens: int) -> list[Path]:
    import yaml
    from datasets import Dataset, Features, Image, Value, disable_progress_bars
    from importlib import resources

    disable_progress_bars()
    folder = out / task.name
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    feats = Features({"id": Value("string"), "image": Image(), "question": Value("string"), "answer": Value("string"),
                      "features": [Value("string")]})
    rows = [{"id": it.id, "image": {"bytes": _png(it), "path": f"{it.id}.png"}, "question": question, "answer": a,
             "features": list(it.features)} for it, a in zip(items, answers, strict=True)]
    data = folder / "test.parquet"
    Dataset.from_list(rows, features=feats).to_parquet(str(data))
    package = resources.files("fracdata")
    copies = {"utils.py": HERE / "lmms_task_utils.py",
              **{f"{name}.py": (HERE if pkg == "fracbench" else package) / file for name, (pkg, file) in VENDORED.items()}}
    for name, src in copies.items():
        (folder / name).write_text(vendored(src.read_text(encoding="utf-8")), encoding="utf-8")
        _standalone(folder / name)
    # the taxonomy as JSON: lmms-eval reads every YAML file under --include_path as a candidate task
    taxonomy = yaml.safe_load((package / "taxonomy.yaml").read_text(encoding="utf-8"))
    (folder / "taxonomy.json").write_text(json.dumps(taxonomy, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
    from fracbench.lmms_task_utils import METRICS

    config = {
        "task": task.name, "dataset_path": "parquet", "dataset_kwargs": {"data_files": {"test": str(data.resolve())}},
        "test_split": "test", "output_type": "generate_until",
        "doc_to_visual": "UTILS.doc_to_visual", "doc_to_text": "UTILS.doc_to_text", "doc_to_target": "answer",
        "generation_kwargs": {"max_new_tokens": max_new_tokens, "temperature": 0, "do_sample": False, "num_beams": 1},
        "process_results": "UTILS.process_results",
        "metric_list": [{"metric": m, "aggregation": f"UTILS.{m}", "higher_is_better": True} for m in METRICS],
        "lmms_eval_specific_kwargs": {"default": {"pre_prompt": "", "post_prompt": ""}},
        "metadata": [{"version": task.version}],
    }
    text = yaml.safe_dump(config, sort_keys=False, width=1000)
    text = text.replace("UTILS.", "!function utils.")  # lmms-eval's YAML tag for a function of utils.py
    head = (f"# fracbench task {task.name} v{task.version}, exported by `fracbench export --format lmms-eval`.\n"
            f"# Run: lmms-eval --include_path {out} --tasks {task.name} --model ...   (the data path below is absolute:\n"
            "# re-export, or edit it, after moving this folder). Scores = fracbench's point estimates (utils.py).\n")
    (folder / f"{task.name}.yaml").write_text(head + text + "\n", encoding="utf-8")
    return [folder / f"{task.name}.yaml", data]


def vlmevalkit(task, items, question: str, answers: list[str], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"{task.name}.tsv"
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter="\t", lineterminator="\n")
        w.writerow(["index", "image", "question", "answer", "id", "features"])
        for i, (it, a) in enumerate(zip(items, answers, strict=True)):
            w.writerow([i, base64.b64encode(_png(it)).decode(), question, a, it.id, ", ".join(it.features)])
    return [path]


def run(args) -> int:
    from fracbench.data import load_gold
    from fracdata.inference.task import load_task, prompt_text
    from fracdata.answer import render_answer
    from fracdata.taxonomy import load_taxonomy

    task, _ = load_task(args.task)
    tax = load_taxonomy()
    gold = Path(args.gold or task.gold)
    items = load_gold(gold, tax)
    question = _question(prompt_text(task, args.prompt or task.default_prompt))
    answers = [render_answer(list(it.features), tax) for it in items]
    out = Path(args.out or Path(DEFAULT_OUT) / args.format)
    if args.format == "lmms-eval":
        files = lmms_eval(task, items, question, answers, out, args.max_new_tokens)
    else:
        files = vlmevalkit(task, items, question, answers, out)
    print(f"wrote {', '.join(map(str, files))}: task {task.name} v{task.version}, {len(items)} gold images from {gold}, "
          f"prompt {args.prompt or task.default_prompt!r}")
    return 0
