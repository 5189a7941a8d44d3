"""`fracdata demo --labels` (`make demo-labels`): checking labels without hand-labelling them all, in miniature.

Synth writes three random teachers (independent errors, 0.84 exact-set agreement each: the
simulated rebuttal's GPT-vs-human figure, never the study's) and one systematic teacher
(ig_facet called cleavage_facet). Then, every step the real command:
  labels aggregate  the four teachers -> Dawid-Skene labels (manifest and gold images)
  probe             the tiny model's vision tower + logistic regressions over the first random
                    teacher's labels -> suspects, scored against the errors synth injected
  build x 3, train x 3   students of the random teacher, the systematic one and the aggregate
  bench             teachers' rows, base, students, the probe row; inheritance per student
It prints: each labeller's agreement with the oracle beside the aggregate's, the suspects'
precision in the top 5% and recall of the injected errors, the aggregate's student against the
single teacher's (paired test), the inheritance of the random and the systematic teacher's
students on the confused features, and the probe's row.
"""

from __future__ import annotations

import json
import math
import shutil
import sys
import time
from pathlib import Path

from fracdata.demo import summary
from fracdata.demo.steps import run_step, threads_env

TEACHERS = ["random", "random-2", "random-3", "systematic"]
TRAININGS = [("tiny-ft-full", "random"), ("tiny-ft-systematic", "systematic"), ("tiny-ft-aggregate", "aggregate")]
TOP = 0.05  # the suspects a reviewer checks: 5% of the labelled images


def _read(path: Path) -> dict[str, set[str]]:
    return {r["id"]: set(r["features"]) for r in map(json.loads, path.read_text().splitlines()) if r}


def agreement(labels: dict, oracle: dict) -> float:
    """Share of the oracle's images whose label set the labeller gives exactly."""
    return sum(labels.get(i) == f for i, f in oracle.items()) / len(oracle)


def suspects_vs_injected(suspects: Path, teacher: dict, oracle: dict) -> dict:
    """Precision of the first 5% (of the images) suspects, and recall of all suspects, against the
    (image, feature) cells where the teacher differs from the oracle: the errors synth injected."""
    rows = [json.loads(x) for x in suspects.read_text().splitlines() if x.strip()]
    errors = {(i, f) for i in oracle for f in oracle[i] ^ teacher.get(i, set())}
    k = math.ceil(TOP * len(oracle))
    top = rows[:k]
    hit = lambda r: (r["id"], r["feature"]) in errors  # noqa: E731
    found = {(r["id"], r["feature"]) for r in rows if hit(r)}
    return {"top": k, "precision_top": sum(map(hit, top)) / max(1, len(top)), "suspects": len(rows),
            "errors": len(errors), "recall": len(found) / max(1, len(errors)),
            "recall_top": sum(map(hit, top)) / max(1, len(errors))}


def run_labels(args) -> int:
    import yaml

    from fracdata.inference.entry import MODELS_DIR

    root = Path(args.out or "demo-labels").resolve()
    root.mkdir(parents=True, exist_ok=True)
    fd = [sys.executable, "-m", "fracdata"]
    synth, agg = root / "data" / "synthetic", root / "data" / "labels"
    model, runs, reports = root / "models" / "tiny-qwen3vl", root / "runs" / "demo-labels", root / "reports" / "bench"
    log = root / "demo.log"
    log.write_text("")
    env, threads = threads_env()
    steps = args.steps or 1200
    print(f"[demo] labels: synth (4 teachers), aggregate, probe, 3 builds, 3 trainings of {steps:,} steps, bench; "
          f"about 3x the time of `make demo`. Log: {log}", flush=True)
    print(f"[demo] {threads}", flush=True)
    t0, times = time.perf_counter(), {}
    times["synth"] = run_step("synth", fd + ["synth", "--out", str(synth), "--seed", str(args.seed), "--n", str(args.n),
                                             "--n-gold", str(args.n_gold), "--n-manual", str(args.n_manual),
                                             "--teacher-agreement", str(args.teacher_agreement), "--teacher-errors",
                                             "random", "systematic", "--random-teachers", "3"], log, env)
    teacher = {t: synth / "teacher" / f"{t}.jsonl" for t in TEACHERS}
    for split, suffix in (("manifest", ""), ("gold", ".gold")):
        times[f"aggregate {split}"] = run_step(f"aggregate {split}", fd + [
            "labels", "aggregate", "--labels", *(str(synth / "teacher" / f"{t}{suffix}.jsonl") for t in TEACHERS),
            "--out", str(agg / f"aggregate{suffix}.jsonl")], log, env)
    teacher["aggregate"] = agg / "aggregate.jsonl"
    times["tiny-model"] = run_step("tiny-model", fd + ["tiny-model", str(model), "--seed", str(args.seed),
                                                       "--min-pixels", "9216"], log, env)
    times["probe"] = run_step("probe", fd + ["probe", "--manifest", str(synth / "manifest.jsonl"), "--labels",
                                             str(teacher["random"]), "--encoder", str(model), "--out",
                                             str(root / "data" / "probe"), "--seed", str(args.seed)], log, env)
    data = {t: root / "data" / "processed" / t for t in ("random", "systematic", "aggregate")}
    for t, path in data.items():
        times[f"build {t}"] = run_step(f"build {t}", fd + ["build", "--manifest", str(synth / "manifest.jsonl"), "--labels",
                                                          str(teacher[t]), "--manual", str(synth / "manual"), "--gold",
                                                          str(synth / "gold.jsonl"), "--out", str(path), "--seed",
                                                          str(args.seed)], log, env)
    for name, t in TRAININGS:
        out = runs / name.removeprefix("tiny-ft-")
        shutil.rmtree(out, ignore_errors=True)
        argv = fd + ["train", args.recipe, "--model", str(model), "--dataset-dir", str(data[t]), "--output-dir", str(out)]
        for s in [f"dataset=full", f"seed={args.seed}", f"max_steps={steps}", *args.sets]:
            argv += ["--set", s]
        times[f"train {name}"] = run_step(f"train {name.removeprefix('tiny-ft-')}", argv, log, env, steps=steps)

    folder = reports / "entries"
    folder.mkdir(parents=True, exist_ok=True)
    entries = {}
    gold_labels = {"teacher-random": synth / "teacher" / "random.gold.jsonl",
                   "teacher-systematic": synth / "teacher" / "systematic.gold.jsonl",
                   "teacher-aggregate": agg / "aggregate.gold.jsonl"}
    for name, path in gold_labels.items():
        entries[name] = {"name": name, "kind": "labels", "path": str(path)}
    for name, path in {"tiny-base": model, **{n: runs / n.removeprefix("tiny-ft-") for n, _ in TRAININGS}}.items():
        e = yaml.safe_load((MODELS_DIR / ("tiny-base.yaml" if name == "tiny-base" else "tiny-ft.yaml")).read_text())
        entries[name] = {**e, "name": name, "path": str(path)}
    entries["probe"] = {"name": "probe", "kind": "probe", "path": str(data["random"]), "encoder": str(model),
                        "image_max_pixels": 16384}
    for name, e in entries.items():
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(e, sort_keys=False))
    shutil.rmtree(reports / "predictions", ignore_errors=True)
    times["bench"] = run_step("bench", [sys.executable, "-m", "fracbench", "run", "--models",
                                        *(str(folder / f"{n}.yaml") for n in entries), "--gold", str(synth / "gold.jsonl"),
                                        "--out", str(reports), "--cache", str(reports / "cache.sqlite"),
                                        "--inherit", "tiny-ft-full=teacher-random", "--inherit",
                                        "tiny-ft-systematic=teacher-systematic", "--inherit",
                                        "tiny-ft-aggregate=teacher-aggregate"], log, env)
    metrics = json.loads((reports / "metrics.json").read_text())
    oracle = _read(synth / "labels.jsonl")
    print()
    print("agreement with the oracle (exact label set, training images; aggregate = Dawid-Skene of the 4): " + ", ".join(
        f"{t} {agreement(_read(p), oracle):.3f}" for t, p in teacher.items()))
    s = suspects_vs_injected(root / "data" / "probe" / "suspects.jsonl", _read(teacher["random"]), oracle)
    print(f"suspects of teacher random (probe on the tiny model's vision tower): precision in the top 5% "
          f"({s['top']} suspects) {s['precision_top']:.3f}; recall of the {s['errors']} injected (image, feature) errors "
          f"{s['recall']:.3f} over all {s['suspects']} suspects ({s['recall_top']:.3f} in the top 5%)")
    d = summary.paired(metrics, "tiny-ft-aggregate", "tiny-ft-full", "micro_f1")  # as docs/labels.md measured it
    print(f"student on aggregated labels - student on teacher random: micro-F1 {d['diff']:+.3f} (95% CI {d['ci_low']:+.3f} "
          f"to {d['ci_high']:+.3f}), paired randomisation p = {d['p_value']:.4g} (Holm {d['p_holm']:.4g})")
    def rec(r):  # recovered share with its CI, or "-" when the teacher made no error there
        v = r["recovered"]
        return "-" if v["value"] is None else f"{v['value']:.2f} [{v['ci_low']:.2f}, {v['ci_high']:.2f}]"

    for pair in metrics.get("inheritance", []):
        per = pair["per_feature"]
        parts = [f"{f}: inherited {per[f]['inherited']} of {per[f]['teacher_errors']} teacher errors, recovered {rec(per[f])}"
                 for f in summary.CONFUSED if f in per]
        print(f"inheritance {pair['student']} <- {pair['teacher']}: all features recovered {rec(pair['all'])}; "
              + "; ".join(parts))
    for line in summary.summarise(metrics):
        print(line)
    total = time.perf_counter() - t0
    print("steps: " + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + f"; total {total / 60:.1f} min")
    print(f"wrote {reports}/report.md (metrics.json, inheritance.csv); probe {root / 'data' / 'probe'}; log {log}")
    return 0
