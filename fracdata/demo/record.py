"""ROOT/demo.json: what one demo run measured and what it ran on, so a figure can be reproduced.

Same code, data and seed give byte-identical synthetic data, dataset and tiny model; training and
scoring then depend on the CPU floats, which depend on the thread count (it fixes the order of the
reductions), the CPU's vector units and the numerical libraries. So the record holds the threads
the demo's commands ran with, the host (fracdata.provenance.host: CPU model and vector flags,
cores, library versions), the settings, the time per step, and per model the headline (strict
per-image Jaccard) and micro precision / F1 with their 95% CIs (docs/demo.md, "Reproducibility").
"""

from __future__ import annotations

import json
import shlex
import sys
from datetime import datetime, timezone
from pathlib import Path

from fracdata.files import atomic_write_bytes
from fracdata.provenance import describe, git_state, host

FIGURES = {"strict_jaccard": ("strict", "jaccard"), "micro_precision": ("micro", "precision"),
           "micro_f1": ("micro", "f1")}


def figures(metrics: dict) -> dict:
    """{model: {metric: [value, ci_low, ci_high]}} from metrics.json, rounded to 4 places."""
    out = {}
    for name, m in metrics["models"].items():
        out[name] = {k: [round(m[a][b][x], 4) for x in ("value", "ci_low", "ci_high")] for k, (a, b) in FIGURES.items()}
        out[name]["none_on_featured"] = m["abstention"]["none_on_featured"]
    return out


def write(root: Path, args, env: dict, threads: str, times: dict, total_s: float, metrics: dict, claims: list) -> Path:
    """`threads`: the demo's line saying how OMP_NUM_THREADS was chosen (yours, or the cores free)."""
    settings = {k: getattr(args, k) for k in ("seed", "n", "n_gold", "n_manual", "teacher_agreement", "steps", "ablation",
                                              "recipe", "sets")}
    record = {"created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "command": "fracdata " + shlex.join(sys.argv[1:]),
              "git": describe(git_state()), "settings": settings, "threads": threads, "host": host(env),
              "times_s": {k: round(v, 1) for k, v in times.items()}, "total_s": round(total_s, 1),
              "figures": figures(metrics), "claims": [{"holds": ok, "claim": text} for ok, text in claims]}
    path = root / "demo.json"
    atomic_write_bytes(path, (json.dumps(record, indent=1) + "\n").encode())
    return path
