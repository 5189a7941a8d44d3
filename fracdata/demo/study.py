"""The demo's study: synth -> build -> tiny-model -> train -> bench as real subprocesses (steps.py),
an up-front time estimate, then the claims (summary.py). Layout and steps: demo/__init__.py."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from fracdata.demo.record import write as write_record
from fracdata.demo.steps import run_step, threads_env
from fracdata.train.recipes import RECIPES_ROOT  # light: LlamaFactory loads only when validating

RECIPE = RECIPES_ROOT / "demo" / "tiny_qwen3vl_full_sft.yaml"
DEFAULT_STEPS = 1200  # the demo recipe's max_steps (checked by tests/test_demo.py)
MIN_PIXELS = 9216  # 96x96: the synthetic images (96-128 px a side) keep their 9-16 visual tokens
# Seconds per step of a default run, measured on the shared 2-core machine at load average ~3
# (one other busy process; docs/demo.md, "Measured"): the up-front estimate. Training is
# 0.23 s/step there, 0.33 s at load 4-6: per sample, not per step (batch 64 took 2.1x the time
# of batch 32), so only fewer samples would make it faster, and fewer failed the claims.
COST = {"synth": 37.0, "build": 76.0, "tiny-model": 10.0, "train start": 41.0, "step": 0.25, "bench": 21.0,
        "model card": 4.0, "calibrate": 15.0}


def estimate(args, trainings: int) -> float:
    """Seconds, scaled from COST by the corpus size and the steps. Training start-up is ~1/3
    imports and model load, ~2/3 tokenising the dataset (in proportion to --n)."""
    size = (args.n + args.n_gold + args.n_manual) / 3260  # COST was measured at --n 3000
    steps = args.steps or DEFAULT_STEPS
    builds = 2 if args.ablation else 1
    start = COST["train start"] * (1 / 3 + 2 / 3 * args.n / 3000)
    bench = COST["bench"] * (args.n_gold / 200) * (1 + 0.5 * (trainings - 1))  # +1 fine-tuned model per training
    return (COST["synth"] * size + COST["build"] * size * builds + COST["tiny-model"]
            + trainings * (start + steps * COST["step"]) + bench + COST["model card"] + COST["calibrate"] * args.n / 3000)


def run(args) -> int:
    from fracdata.demo import summary

    root = Path(args.out or ("demo-ablation" if args.ablation else ".")).resolve()
    root.mkdir(parents=True, exist_ok=True)
    fd = [sys.executable, "-m", "fracdata"]
    synth = root / "data" / "synthetic"
    data = {"random": root / "data" / "processed" / "synthetic", "systematic": root / "data" / "processed" / "synthetic-systematic"}
    model, runs, reports = root / "models" / "tiny-qwen3vl", root / "runs" / "demo", root / "reports" / "bench"
    log = root / "demo.log"
    log.write_text("")
    env, threads = threads_env()
    teachers = ["random", "systematic"] if args.ablation else ["random"]
    # (model name, dataset variant, teacher): what is trained
    trainings = [("tiny-ft-full", "full", "random")]
    if args.ablation:
        trainings += [("tiny-ft-no_rotation", "no_rotation", "random"), ("tiny-ft-systematic", "full", "systematic")]
    steps = args.steps or DEFAULT_STEPS
    load = os.getloadavg()[0]
    busy = (f"; the load average is {load:.1f} on {os.cpu_count()} cores now, so expect longer"
            if load > (os.cpu_count() or 1) * 1.5 else "")
    print(f"[demo] 7 steps, {len(trainings)} training run(s) of {steps:,} steps: about "
          f"{estimate(args, len(trainings)) / 60:.0f} min on 2 cores shared with one other busy process{busy}. "
          f"Log: {log}", flush=True)
    print(f"[demo] {threads}", flush=True)
    t0 = time.perf_counter()
    times: dict[str, float] = {}

    orient = ["--orientation", "canonical", "--gold-orientation", "all"] if args.ablation else []
    times["synth"] = run_step("synth", fd + ["synth", "--out", str(synth), "--seed", str(args.seed), "--n", str(args.n),
                                             "--n-gold", str(args.n_gold), "--n-manual", str(args.n_manual),
                                             "--teacher-agreement", str(args.teacher_agreement),
                                             "--teacher-errors", *teachers] + orient, log, env)
    for t in teachers:  # the student learns from the teacher's labels, never the oracle's
        name = "build" if t == "random" else f"build {t}"
        times[name] = run_step(name, fd + ["build", "--manifest", str(synth / "manifest.jsonl"),
                                           "--labels", str(synth / "teacher" / f"{t}.jsonl"),
                                           "--manual", str(synth / "manual"), "--gold", str(synth / "gold.jsonl"),
                                           "--out", str(data[t]), "--seed", str(args.seed)], log, env)
    times["tiny-model"] = run_step("tiny-model", fd + ["tiny-model", str(model), "--seed", str(args.seed),
                                                       "--min-pixels", str(MIN_PIXELS)], log, env)
    for name, variant, teacher in trainings:
        out = runs / name.removeprefix("tiny-ft-")
        shutil.rmtree(out, ignore_errors=True)  # the demo is a fresh run every time
        sets = [f"dataset={variant}", f"seed={args.seed}", f"max_steps={steps}"]
        argv = fd + ["train", args.recipe, "--model", str(model), "--dataset-dir", str(data[teacher]),
                     "--output-dir", str(out)]
        for s in sets + args.sets:
            argv += ["--set", s]
        times[f"train {name}"] = run_step(f"train {name.removeprefix('tiny-ft-')}", argv, log, env, steps=steps)

    entries = _entries(reports / "entries", model, runs, [n for n, _, _ in trainings],
                       {f"teacher-{t}": synth / "teacher" / f"{t}.gold.jsonl" for t in teachers})
    # per-feature probabilities of the fine-tuned model, fitted on its dataset's val split
    # (calibration.json beside the checkpoint): the bench then reports them before and after
    times["calibrate"] = run_step("calibrate", fd + ["calibrate", "--model", str(entries["tiny-ft-full"]),
                                                     "--dataset-dir", str(data["random"])], log, env)
    bench = [sys.executable, "-m", "fracbench", "run", "--models", *map(str, entries.values()),
             "--blank", "tiny-ft-full", "--gold", str(synth / "gold.jsonl"), "--out", str(reports),
             "--cache", str(reports / "cache.sqlite")]
    shutil.rmtree(reports / "predictions", ignore_errors=True)
    times["bench"] = run_step("bench", bench, log, env)
    card = runs / "full" / "README.md"  # the fine-tuned checkpoint's model card, with the scores just measured
    times["model card"] = run_step("model card", fd + ["release", "model", str(card.parent), "--metrics",
                                                       str(reports / "metrics.json"), "--bench-model", "tiny-ft-full",
                                                       "--name", "tiny-ft-full", "--licence", "apache-2.0"], log, env)

    import json

    metrics = json.loads((reports / "metrics.json").read_text())
    total = time.perf_counter() - t0
    print()
    for line in summary.summarise(metrics):
        print(line)
    print()
    print(summary.against_teacher(metrics, "teacher-random", "tiny-ft-full"))
    print(summary.per_feature(metrics, "teacher-random", "tiny-ft-full"))
    print(summary.calibration(metrics, "tiny-ft-full"))
    if args.ablation:
        d = summary.paired(metrics, "tiny-ft-full", "tiny-ft-no_rotation")
        print(f"rotation ablation: strict J full - no_rotation = {d['diff']:+.3f} (95% CI {d['ci_low']:+.3f} to "
              f"{d['ci_high']:+.3f}), paired randomisation p = {d['p_value']:.4g} (Holm {d['p_holm']:.4g})")
        print(summary.against_teacher(metrics, "teacher-systematic", "tiny-ft-systematic"))
        print(summary.per_feature(metrics, "teacher-systematic", "tiny-ft-systematic"))
        line = summary.confusion(metrics, ["teacher-systematic", "tiny-ft-systematic", "teacher-random", "tiny-ft-full"])
        got = summary.inherits(metrics, "tiny-ft-systematic", "tiny-ft-full")
        print(line + ("; the systematic teacher's student inherits its confusion" if got else
                      "; the student trained on the systematic teacher does not show its confusion"))
    results = summary.checks(metrics, "tiny-ft-full", args.min_gain, args.min_blank_gain)
    for ok, text in results:
        print(f"{'PASS' if ok else 'FAIL'}  {text}")
    print("steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + f"; total {total / 60:.1f} min")
    record = write_record(root, args, env, threads, times, total, metrics, results)
    print(f"wrote {reports}/report.md (metrics.json, CSV, PNG); model card {card}; gold {synth / 'gold.jsonl'}; "
          f"log {log}; figures, threads, CPU and library versions: {record}")
    return 0 if all(ok for ok, _ in results) else 1


def _entries(folder: Path, model: Path, runs: Path, tuned: list[str], teachers: dict[str, Path]) -> dict[str, Path]:
    """Model entries for this run, in report order: teachers, base, fine-tuned. The checkpoint
    entries are the shipped tiny-base / tiny-ft entries with this run's paths filled in."""
    import yaml

    from fracdata.inference.entry import MODELS_DIR

    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for name, path in teachers.items():
        out[name] = folder / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump({"name": name, "kind": "labels", "path": str(path)}, sort_keys=False))
    for name, path in {"tiny-base": model, **{n: runs / n.removeprefix("tiny-ft-") for n in tuned}}.items():
        entry = yaml.safe_load((MODELS_DIR / ("tiny-base.yaml" if name == "tiny-base" else "tiny-ft.yaml")).read_text())
        entry.update(name=name, path=str(path))
        out[name] = folder / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump(entry, sort_keys=False))
    return out
