"""`fracdata demo`: the whole study in miniature, offline, on CPU, and it must really learn.

    fracdata demo [--out ROOT]             synth -> build -> tiny-model -> train -> calibrate -> bench -> model card
    fracdata demo --ablation [--out ROOT]  + no_rotation, + a systematic-error teacher
    fracdata demo --labels [--out ROOT]    several teachers: aggregate, probe + suspects, inheritance (labels.py)

The study's structure: a teacher labels the training images (here a simulated one that agrees
with the oracle on 84% of images: the GPT-5.2 vs human figure of the review page's simulated
rebuttal, not the paper's, docs/study.md), the student is trained on
the teacher's labels, and everything is scored against the oracle on a held-out gold set, the
teacher's own labels of the gold images included (its row). Every step is the real command
(`fracdata synth`, `fracdata build`, `fracdata tiny-model`, `fracdata train`, `fracdata calibrate`,
`fracbench run`)
run as a subprocess, so the demo runs what users run. Layout under ROOT (default `.`):
  data/synthetic/            the corpus, oracle labels, teacher/ labels, gold (own seed stream)
  data/processed/synthetic/  the LlamaFactory dataset from the teacher's labels (leak guard here)
  models/tiny-qwen3vl/       the untrained random model = the `base` row of the report
  runs/demo/<variant>/       the fine-tuned checkpoint(s); full/calibration.json (fracdata calibrate, on val); runs/demo/full/README.md its model card (fracdata release model)
  reports/bench/             predictions, metrics.json, report.md, CSV, PNG
  demo.json                  the figures and what they depend on: threads, CPU, library versions
Modules: study.py (the steps, the estimate, the scores), steps.py (subprocesses, threads,
progress), summary.py (the claims), labels.py (`--labels`: docs/labels.md), record.py (demo.json),
cli.py (the command line).
"""

from fracdata.demo.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
