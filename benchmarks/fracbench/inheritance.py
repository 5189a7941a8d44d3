"""What a student inherited from its teacher, per feature, on the gold images.

Given the gold labels G, the teacher's labels T of the gold images (a `kind: labels` entry: the
teacher's row) and the student's predictions S, each (image, feature) cell where the teacher is
wrong (T != G) is either
  inherited   the student is wrong the same way (S == T): a teacher's miss the student also misses,
              or a teacher's false alarm the student also raises
  corrected   the student is right (S == G)
and each cell where the teacher is right is `new` when the student is wrong there (S != G).
recovered = corrected / teacher errors: the share of the teacher's errors the student undid.
Random teacher errors are what a student can average out (recovered near 1); a systematic
confusion is learnt (recovered near 0 on the confused features, inherited on both sides of it).
new rate = new / cells the teacher got right. CIs: the report's bootstrap (the same resamples,
over source papers when the gold records name them), percentile, as every other CI in it.
`fracbench score/run --inherit STUDENT=TEACHER` (repeatable) adds one table per pair to
metrics.json (`inheritance`) and to report.md; `inheritance.csv` holds every number.
"""

from __future__ import annotations

import csv
from pathlib import Path

COUNTS = ("teacher_errors", "teacher_misses", "teacher_false_alarms", "inherited", "corrected", "new", "teacher_right")


def parse_pairs(pairs: list[str] | None) -> list[tuple[str, str]]:
    from fracdata.errors import FracdataError

    out = []
    for p in pairs or []:
        student, sep, teacher = p.partition("=")
        if not sep or not student or not teacher or student == teacher:
            raise FracdataError(f"--inherit {p!r}: expected STUDENT=TEACHER (two different model names)")
        out.append((student, teacher))
    return out


def _cells(G, T, S) -> dict:
    wrong = T != G
    return {"teacher_errors": wrong, "teacher_misses": wrong & G, "teacher_false_alarms": wrong & ~G,
            "inherited": wrong & (S == T), "corrected": wrong & (S == G), "new": ~wrong & (S != G),
            "teacher_right": ~wrong}


def _ci(num, den, point_num, point_den) -> dict:
    import numpy as np

    value = float(point_num / point_den) if point_den else None
    rates = np.divide(num, den, out=np.full(np.shape(num), np.nan), where=den > 0)
    rates = rates[~np.isnan(rates)]
    if value is None or not len(rates):
        return {"value": value, "ci_low": None, "ci_high": None}
    lo, hi = np.percentile(rates, [2.5, 97.5])
    return {"value": value, "ci_low": float(lo), "ci_high": float(hi)}


def inheritance(G, T, S, features: list[str], W) -> dict:
    """{"all": row, "per_feature": {feature: row}}: counts and recovered / new rate with CIs.
    G, T, S: (images x features) bool; W: (rounds x images) bootstrap copies of each image."""
    import numpy as np

    cells = {k: v.astype(float) for k, v in _cells(G, T, S).items()}
    boot = {k: W @ v for k, v in cells.items()}  # (rounds x features)

    def row(sel):
        n = {k: float(v[:, sel].sum()) for k, v in cells.items()}
        b = {k: v[:, sel].sum(1) for k, v in boot.items()}
        return {**{k: int(n[k]) for k in COUNTS},
                "recovered": _ci(b["corrected"], b["teacher_errors"], n["corrected"], n["teacher_errors"]),
                "new_rate": _ci(b["new"], b["teacher_right"], n["new"], n["teacher_right"])}

    used = [j for j in range(len(features)) if (G[:, j] | T[:, j] | S[:, j]).any()]
    return {"all": row(used), "per_feature": {features[j]: row([j]) for j in used}}


def _rate(v: dict) -> str:
    if v["value"] is None:
        return "-"
    if v["ci_low"] is None:
        return f"{v['value']:.2f}"
    return f"{v['value']:.2f} [{v['ci_low']:.2f}, {v['ci_high']:.2f}]"


def markdown(metrics: dict) -> list[str]:
    """The report's section, one table per (student, teacher) pair; [] when none was asked for."""
    pairs = metrics.get("inheritance") or []
    if not pairs:
        return []
    lines = ["", "## Inheritance: what each student took from its teacher", "",
             "Per (image, feature) cell of the gold set: where the teacher is wrong, the student either makes the same "
             "error (**inherited**) or gets it right (**corrected**); **new** errors are where the teacher was right and "
             "the student is not. **Recovered** = corrected / teacher errors (95% CI, the report's bootstrap).", ""]
    for p in pairs:
        lines += [f"### {p['student']} taught by {p['teacher']}", "",
                  "| feature | teacher errors (misses / false alarms) | inherited | corrected | new | recovered | new rate |",
                  "|---|---|---|---|---|---|---|"]
        for name, r in [("**all features**", p["all"]), *p["per_feature"].items()]:
            if name != "**all features**" and not (r["teacher_errors"] or r["new"]):
                continue
            lines.append(f"| {name} | {r['teacher_errors']} ({r['teacher_misses']} / {r['teacher_false_alarms']}) | "
                         f"{r['inherited']} | {r['corrected']} | {r['new']} | {_rate(r['recovered'])} | {_rate(r['new_rate'])} |")
        lines.append("")
    return lines


def write_csv(metrics: dict, out: Path) -> list[Path]:
    from fracdata.files import atomic_path

    pairs = metrics.get("inheritance") or []
    if not pairs:
        return []
    path = out / "inheritance.csv"
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["student", "teacher", "feature", *COUNTS,
                    *(f"{k}{s}" for k in ("recovered", "new_rate") for s in ("", "_ci_low", "_ci_high"))])
        for p in pairs:
            for name, r in [("(all)", p["all"]), *p["per_feature"].items()]:
                w.writerow([p["student"], p["teacher"], name, *(r[k] for k in COUNTS),
                            *(repr(r[k][s]) for k in ("recovered", "new_rate") for s in ("value", "ci_low", "ci_high"))])
    return [path]
