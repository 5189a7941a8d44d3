"""`fracdata demo`: the whole study in miniature, offline, on CPU, and it must really learn.

    fracdata demo [--out ROOT]             synth -> build -> tiny-model -> train -> bench
    fracdata demo --ablation [--out ROOT]  full vs no_rotation on a gold set in all orientations

Every step is the real command (`fracdata synth`, `fracdata build`, `fracdata tiny-model`,
`fracdata train`, `fracbench run`) run as a subprocess, so the demo proves what users run.
Layout under ROOT (default `.`, the same paths `make dataset/train/bench` use):
  data/synthetic/            the corpus (training manifest seed S; gold from another seed stream)
  data/processed/synthetic/  the LlamaFactory dataset (the builder's gold leak guard runs here)
  models/tiny-qwen3vl/       the untrained random model = the `base` row of the report
  runs/demo/<variant>/       the fine-tuned checkpoint(s)
  reports/bench/             predictions, metrics.json, report.md, CSV, PNG
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.train.recipes import RECIPES_ROOT  # light: LlamaFactory loads only when validating

RECIPE = RECIPES_ROOT / "demo" / "tiny_qwen3vl_full_sft.yaml"


def add_arguments(p):
    p.add_argument("--out", default=None, help="root folder for everything (default: . ; --ablation: demo-ablation)")
    p.add_argument("--ablation", action="store_true",
                   help="train `full` and `no_rotation` with the same recipe and seed; gold in all 4 orientations")
    p.add_argument("--seed", type=int, default=0, help="seed for synth, split and training (default 0)")
    p.add_argument("--n", type=int, default=3000, help="synthetic training images before augmentation (default 3000)")
    p.add_argument("--n-gold", type=int, default=200, help="held-out gold images (default 200)")
    p.add_argument("--n-manual", type=int, default=60, help="manual rare-feature images (default 60)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default: the demo recipe's max_steps)")
    p.add_argument("--recipe", default=str(RECIPE), help="training recipe (default: the demo recipe)")
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                   help="extra recipe override passed to fracdata train (repeatable)")
    p.add_argument("--min-gain", type=float, default=0.4,
                   help="fail unless fine-tuned micro-F1 beats the base model's by this much (default 0.4)")
    p.add_argument("--min-blank-gain", type=float, default=0.3,
                   help="fail unless fine-tuned micro-F1 beats its own blank-image score by this much (default 0.3)")


def _step(name: str, argv: list[str], log: Path) -> float:
    """Run one pipeline command; its output goes to the log, and a failure names the log."""
    t0 = time.perf_counter()
    print(f"[demo] {name}: {' '.join(argv)}", flush=True)
    with open(log, "a") as f:
        f.write(f"\n$ {' '.join(argv)}\n")
        f.flush()
        proc = subprocess.run(argv, stdout=f, stderr=subprocess.STDOUT)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise FracdataError(f"demo step {name!r} failed (exit {proc.returncode}) after {dt:.0f} s; "
                            f"last line: {tail[-1] if tail else ''!r}; full log: {log}")
    print(f"[demo] {name}: done in {dt:.1f} s", flush=True)
    return dt


def _ci(m: dict) -> str:
    return f"{m['value']:.3f} [{m['ci_low']:.3f}, {m['ci_high']:.3f}]"


def summarise(metrics: dict, base: str, tuned: list[str]) -> list[str]:
    """The short table the demo prints: micro P / R / F1 with 95% CIs per model."""
    rows = [f"{'model':24s} {'micro precision':>22s} {'micro recall':>22s} {'micro F1':>22s}   n"]
    for name, m in metrics["models"].items():
        mi = m["micro"]
        rows.append(f"{name:24s} {_ci(mi['precision']):>22s} {_ci(mi['recall']):>22s} {_ci(mi['f1']):>22s} {m['n']:4d}")
    return rows


def checks(metrics: dict, base: str, tuned: str, min_gain: float, min_blank_gain: float) -> list[tuple[bool, str]]:
    """The demo's claims, each as (holds, sentence with the measured numbers)."""
    f1 = {k: v["micro"]["f1"] for k, v in metrics["models"].items()}
    out = []
    gain = f1[tuned]["value"] - f1[base]["value"]
    out.append((gain >= min_gain, f"fine-tuned micro-F1 - base micro-F1 = {gain:+.3f} (needs >= {min_gain})"))
    apart = f1[tuned]["ci_low"] > f1[base]["ci_high"]
    out.append((apart, f"95% CIs do not overlap: fine-tuned low {f1[tuned]['ci_low']:.3f} > base high "
                       f"{f1[base]['ci_high']:.3f}"))
    blank = f"{tuned}-blank"
    if blank in f1:
        bgain = f1[tuned]["value"] - f1[blank]["value"]
        out.append((bgain >= min_blank_gain, f"fine-tuned micro-F1 - its blank-image control = {bgain:+.3f} "
                                             f"(needs >= {min_blank_gain})"))
    return out


def _paired(metrics: dict, a: str, b: str) -> dict | None:
    for p in metrics.get("paired", []):
        if {p["a"], p["b"]} == {a, b}:
            return p
    return None


def run(args) -> int:
    root = Path(args.out or ("demo-ablation" if args.ablation else ".")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    fd = [sys.executable, "-m", "fracdata"]
    synth, data = root / "data" / "synthetic", root / "data" / "processed" / "synthetic"
    model, runs, reports = root / "models" / "tiny-qwen3vl", root / "runs" / "demo", root / "reports" / "bench"
    log = root / "demo.log"
    log.write_text("")
    t0 = time.perf_counter()
    times: dict[str, float] = {}

    orient = ["--orientation", "canonical", "--gold-orientation", "all"] if args.ablation else []
    times["synth"] = _step("synth", fd + ["synth", "--out", str(synth), "--seed", str(args.seed), "--n", str(args.n),
                                          "--n-gold", str(args.n_gold), "--n-manual", str(args.n_manual)] + orient, log)
    times["build"] = _step("build", fd + ["build", "--manifest", str(synth / "manifest.jsonl"),
                                          "--labels", str(synth / "labels.jsonl"), "--manual", str(synth / "manual"),
                                          "--gold", str(synth / "gold.jsonl"), "--out", str(data),
                                          "--seed", str(args.seed)], log)
    times["tiny-model"] = _step("tiny-model", fd + ["tiny-model", str(model), "--seed", str(args.seed)], log)

    variants = ["full", "no_rotation"] if args.ablation else ["full"]
    for variant in variants:
        out = runs / variant
        shutil.rmtree(out, ignore_errors=True)  # the demo is a fresh run every time
        sets = [f"dataset={variant}", f"seed={args.seed}"] + ([f"max_steps={args.steps}"] if args.steps else [])
        argv = fd + ["train", args.recipe, "--model", str(model), "--dataset-dir", str(data), "--output-dir", str(out)]
        for s in sets + args.sets:
            argv += ["--set", s]
        times[f"train {variant}"] = _step(f"train {variant}", argv, log)

    # Model names: the base row contains `base`; fine-tuned rows are named after their variant.
    names = {"tiny-base": model} | {f"tiny-ft-{v}": runs / v for v in variants}
    from fracbench.config import MODELS_DIR as entry  # the shipped tiny-base / tiny-ft entries
    bench = [sys.executable, "-m", "fracbench", "run", "--models"]
    entries = _entries(root, names, entry)
    bench += [str(p) for p in entries.values()]
    bench += ["--blank", f"tiny-ft-{variants[0]}", "--gold", str(synth / "gold.jsonl"), "--out", str(reports),
              "--cache", str(reports / "cache.sqlite")]
    shutil.rmtree(reports / "predictions", ignore_errors=True)
    times["bench"] = _step("bench", bench, log)

    metrics = json.loads((reports / "metrics.json").read_text())
    total = time.perf_counter() - t0
    print()
    for line in summarise(metrics, "tiny-base", [f"tiny-ft-{v}" for v in variants]):
        print(line)
    print()
    results = checks(metrics, "tiny-base", f"tiny-ft-{variants[0]}", args.min_gain, args.min_blank_gain)
    if args.ablation:
        p = _paired(metrics, "tiny-ft-full", "tiny-ft-no_rotation")
        d = p["metrics"]["micro_f1"]
        sign = 1 if p["a"] == "tiny-ft-full" else -1
        print(f"rotation ablation: micro-F1 full - no_rotation = {sign * d['diff']:+.3f} "
              f"(95% CI {min(sign * d['ci_low'], sign * d['ci_high']):+.3f} to "
              f"{max(sign * d['ci_low'], sign * d['ci_high']):+.3f}), paired randomisation p = {d['p_value']:.4g}")
    for ok, text in results:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print("steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + f"; total {total / 60:.1f} min")
    print(f"wrote {reports}/report.md (metrics.json, CSV, PNG); gold {synth / 'gold.jsonl'}; log {log}")
    return 0 if all(ok for ok, _ in results) else 1


def _entries(root: Path, names: dict[str, Path], shipped: Path) -> dict[str, Path]:
    """Model entries for this run: the shipped tiny entries with this run's paths filled in."""
    import yaml

    folder = root / "reports" / "bench" / "entries"
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, path in names.items():
        entry = yaml.safe_load((shipped / ("tiny-base.yaml" if name == "tiny-base" else "tiny-ft.yaml")).read_text())
        entry.update(name=name, path=str(path))
        out[name] = folder / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump(entry, sort_keys=False))
    return out
