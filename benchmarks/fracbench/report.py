"""`fracbench report`: DIR/metrics.json -> report.md, table.csv, per_feature.csv, paired.csv,
per_feature.png, comparison.png and, when a model has probabilities, calibration.png
(calibration_report.py). Every number is read from metrics.json (CSV at full
precision, Markdown rounded to 3 decimals), so the report can never disagree with `score`.

Figure sizes are fixed so scripts can rely on them: comparison.png is 1000 x 500 px;
per_feature.png is 1200 px wide and 320 px tall per model. Every file is written atomically; a
metrics.json that `score` did not write (not JSON, or of another shape) is one error naming it,
and a figure that cannot be drawn one error naming the figure. Error bars are the percentile
intervals as they are (headline.draw_intervals), also where a point estimate lies outside its own.
The report leads with the headline metric and the abstention counts (headline.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from fracbench.headline import draw_intervals, markdown as headline_markdown
from fracdata.errors import FracdataError
from fracdata.files import atomic_path
from fracdata.provenance import describe
from fracdata.untrusted import table_cell

DPI = 100
COMPARISON_IN = (10.0, 5.0)  # inches at 100 dpi -> 1000 x 500 px
PER_FEATURE_W, PER_FEATURE_H = 12.0, 3.2  # per model row -> 1200 x 320*models px
HEADLINE = [("micro", "precision"), ("micro", "recall"), ("micro", "f1"), ("macro", "precision"),
            ("macro", "recall"), ("macro", "f1"), ("exact_match", None), ("jaccard", None)]


def add_arguments(p) -> None:
    p.add_argument("--out", default="reports/bench", help="folder holding metrics.json (default reports/bench)")


def _get(m: dict, avg: str, name: str | None) -> dict:
    return m[avg] if name is None else m[avg][name]


def _col(avg: str, name: str | None) -> str:
    return avg if name is None else f"{avg}_{name}"


def _fmt(v: dict) -> str:
    return f"{v['value']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}]"


def coverage_cell(c: dict) -> str:
    """`answered/n`, with what the rest were: `1/4 (3 failed)`."""
    rest = ", ".join(f"{c[k]} {k}" for k in ("failed", "unparsed") if c[k])
    return f"{c['answered']}/{c['n']}" + (f" ({rest})" if rest else "")


CONVENTION = ("Precision 0/0 counts as 0 (a model that answers nothing scores 0). Macro averages over the union "
              "of the features in gold and in the model's predictions (scikit-learn `average=\"macro\"`, `labels` = "
              "that union), so a hallucinated feature scores 0 and lowers them.")
STRICT = ("**Strict** scores count a failed or unparsed answer as a wrong answer, not an abstention: its gold "
          "features are misses and it adds one false positive (spread evenly over the features, 1/k each, for "
          "macro); exact match and Jaccard score it 0. The lenient scores above drop it from precision.")


def resampling_sentence(prov: dict) -> str:
    r = prov.get("resampling") or {"unit": "image"}
    if r["unit"] == "source paper":
        loose = f", {r['without_source']} images without a source each their own cluster" if r["without_source"] else ""
        return (f"percentile bootstrap over the {r['clusters']} source papers of the {r['images']} images "
                f"(clustered: a resampled paper brings all its images{loose}; {prov['bootstrap']} resamples, "
                f"seed {prov['seed']}); paired tests swap whole papers.")
    if r["unit"] != "image":  # tiles of one micrograph (`source.parent`), with or without papers
        return (f"percentile bootstrap over the {r['clusters']} clusters of the {r['images']} images (images that "
                f"share a source paper or a parent image, `source.parent`, are one cluster: {r['with_parent']} "
                f"images name a parent; {prov['bootstrap']} resamples, seed {prov['seed']}); paired tests swap "
                "whole clusters.")
    return (f"percentile bootstrap over images ({prov['bootstrap']} resamples, seed {prov['seed']}); the gold "
            "records carry no `source`, so images are treated as independent.")


def write_csvs(metrics: dict, out: Path) -> list[Path]:
    table, per, pairs = out / "table.csv", out / "per_feature.csv", out / "paired.csv"
    with atomic_path(table) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        head = ["model", "kind", "control", "n"]
        for avg, name in HEADLINE:
            c = _col(avg, name)
            head += [c, f"{c}_ci_low", f"{c}_ci_high"]
            if c == "micro_precision":  # coverage next to precision, in every table
                head += ["coverage", "answered", "failed", "unparsed", "none_on_featured", "features_on_none"]
        for avg, name in HEADLINE:
            c = "strict_" + _col(avg, name)
            head += [c, f"{c}_ci_low", f"{c}_ci_high"]
        w.writerow(head + ["labels_predicted"] + [f"status_{s}" for s in next(iter(metrics["models"].values()))["status"]])
        for model, m in metrics["models"].items():
            row = [model, m["kind"], m["control"] or "", m["n"]]
            cov = m["coverage"]
            for avg, name in HEADLINE:
                v = _get(m, avg, name)
                row += [repr(v["value"]), repr(v["ci_low"]), repr(v["ci_high"])]
                if _col(avg, name) == "micro_precision":
                    row += [repr(cov["answered"] / cov["n"]), cov["answered"], cov["failed"], cov["unparsed"],
                            m["abstention"]["none_on_featured"], m["abstention"]["features_on_none"]]
            for avg, name in HEADLINE:
                v = _get(m["strict"], avg, name)
                row += [repr(v["value"]), repr(v["ci_low"]), repr(v["ci_high"])]
            w.writerow(row + [m["labels_predicted"]] + list(m["status"].values()))
    with atomic_path(per) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["model", "feature", "support", "predicted", "tp"] +
                   [f"{k}{s}" for k in ("precision", "recall", "f1") for s in ("", "_ci_low", "_ci_high")])
        for model, m in metrics["models"].items():
            for fid, v in m["per_feature"].items():
                w.writerow([model, fid, v["support"], v["predicted"], v["tp"]] +
                           [repr(v[k][s]) for k in ("precision", "recall", "f1") for s in ("value", "ci_low", "ci_high")])
    with atomic_path(pairs) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["a", "b", "n", "metric", "diff", "ci_low", "ci_high", "p_value", "p_holm"])
        for p in metrics["paired"]:
            for name, v in p["metrics"].items():
                w.writerow([p["a"], p["b"], p["n"], name, repr(v["diff"]), repr(v["ci_low"]), repr(v["ci_high"]),
                            repr(v["p_value"]), repr(v["p_holm"])])
    return [table, per, pairs]


def plot_comparison(metrics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = list(metrics["models"])
    bars = [("strict", "jaccard"), ("micro", "precision"), ("micro", "recall"), ("micro", "f1"), ("macro", "f1")]
    fig, ax = plt.subplots(figsize=COMPARISON_IN, dpi=DPI, layout="constrained")
    width = 0.8 / len(bars)
    x = np.arange(len(models))
    for k, (avg, name) in enumerate(bars):
        vals = [_get(metrics["models"][m], avg, name) for m in models]
        at = x + (k - (len(bars) - 1) / 2) * width
        ax.bar(at, [v["value"] for v in vals], width, label="strict Jaccard (headline)" if avg == "strict" else
               f"{avg} {name}" + (" (the paper's)" if (avg, name) == ("micro", "precision") else ""))
        draw_intervals(ax, at, vals)
    ax.set_xticks(x, models, rotation=15 if len(models) > 3 else 0)
    ax.set_ylim(0, 1.15)  # room above 1.0 for the legend
    ax.set_yticks(np.linspace(0, 1, 6))
    ax.set_ylabel("score (95% bootstrap CI)")
    title = "Model comparison" + (" (--limit run: NOT A SCORE)" if metrics["provenance"]["not_a_score"] else "")
    ax.set_title(f"{title}, n = {metrics['provenance']['n_gold_items']} images")
    ax.legend(loc="upper left", fontsize=8, ncols=len(bars))
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)


def plot_per_feature(metrics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    models = list(metrics["models"])
    feats = sorted({f for m in metrics["models"].values() for f in m["per_feature"]},
                   key=lambda f: -max(m["per_feature"].get(f, {"support": 0})["support"] for m in metrics["models"].values()))
    fig, axes = plt.subplots(len(models), 1, figsize=(PER_FEATURE_W, PER_FEATURE_H * len(models)), dpi=DPI,
                             squeeze=False, layout="constrained")
    x = np.arange(len(feats))
    for ax, model in zip(axes[:, 0], models):
        per = metrics["models"][model]["per_feature"]
        for k, (name, shift) in enumerate((("precision", -0.2), ("recall", 0.2))):
            vals = [per[f][name] if f in per else {"value": 0.0, "ci_low": 0.0, "ci_high": 0.0} for f in feats]
            ax.bar(x + shift, [v["value"] for v in vals], 0.4, label=name)
            draw_intervals(ax, x + shift, vals, capsize=2)
        ax.set_xticks(x, feats, rotation=60, ha="right", fontsize=7)
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{model}: per-feature precision and recall (95% CI; features by gold support)", fontsize=9)
        ax.legend(loc="upper right", fontsize=7)
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)


def markdown(metrics: dict) -> str:
    prov = metrics["provenance"]
    lines = ["# fracbench report", ""]
    if prov["not_a_score"]:
        lines += [f"> **NOT A SCORE: `--limit {prov['limit']}` run on the first {prov['n_gold_items']} gold items only.**", ""]
    from fracbench.adapter_gate import banner

    lines += banner(prov.get("models") or {})
    head = ("micro precision (the paper's metric) | coverage | micro recall | micro F1 | macro precision | macro recall | macro F1 | "
            "exact match | Jaccard")
    lines += [f"Task `{prov['task']['name']}` v{prov['task']['version']}, {prov['n_gold_items']} images from "
              f"`{prov['gold']}`. Values are point estimates with 95% CIs: {resampling_sentence(prov)}", "",
              *headline_markdown(metrics, coverage_cell), "## All metrics", "",
              CONVENTION, "", f"| model | n | {head} |", "|---" * (3 + len(HEADLINE)) + "|"]
    for model, m in metrics["models"].items():
        cells = [_fmt(_get(m, avg, name)) for avg, name in HEADLINE]
        cells.insert(1, coverage_cell(m["coverage"]))
        lines.append(f"| {model} | {m['n']} | " + " | ".join(cells) + " |")
    lines += ["", "### Strict: a failed or unparsed answer is a wrong answer", "", STRICT, "", f"| model | n | {head} |",
              "|---" * (3 + len(HEADLINE)) + "|"]
    for model, m in metrics["models"].items():
        cells = [_fmt(_get(m["strict"], avg, name)) for avg, name in HEADLINE]
        cells.insert(1, coverage_cell(m["coverage"]))
        lines.append(f"| {model} | {m['n']} | " + " | ".join(cells) + " |")
    n_tests = sum(len(p["metrics"]) for p in metrics["paired"])
    lines += ["", "![model comparison](comparison.png)", "", "## Paired tests (A - B, same images)", "",
              f"Approximate randomisation ({prov['permutations']} rounds) for p; paired bootstrap for the CI; "
              f"Holm's adjustment over all {n_tests} tests of this report.", "",
              "| A | B | metric | difference [95% CI] | p | p (Holm) |", "|---|---|---|---|---|---|"]
    for p in metrics["paired"]:
        for name, v in p["metrics"].items():
            lines.append(f"| {p['a']} | {p['b']} | {name} | {v['diff']:+.3f} [{v['ci_low']:+.3f}, {v['ci_high']:+.3f}] "
                         f"| {v['p_value']:.4f} | {v['p_holm']:.4f} |")
    lines += ["", "## Answer status", "", "| model | " + " | ".join(next(iter(metrics["models"].values()))["status"]) +
              " | unknown terms (top) |", "|---" * (2 + len(next(iter(metrics["models"].values()))["status"])) + "|"]
    for model, m in metrics["models"].items():
        # a model's unmapped words, as it wrote them: control bytes shown escaped, never acted on
        top = ", ".join(f"{table_cell(t)} ({c})" for t, c in list(m["unknown_terms"].items())[:5]) or "-"
        lines.append(f"| {model} | " + " | ".join(str(c) for c in m["status"].values()) + f" | {top} |")
    if metrics["annotators"]:
        lines += ["", "## Annotator agreement (Cohen's kappa over image x feature cells)", "",
                  "| A | B | images | features | kappa | exact agreement |", "|---|---|---|---|---|---|"]
        for a in metrics["annotators"]:
            kappa = "undefined" if a["kappa"] is None else f"{a['kappa']:.3f}"
            lines.append(f"| {a['a']} | {a['b']} | {a['n_images']} | {a['n_features']} | {kappa} | {a['exact_agreement']:.3f} |")
    from fracbench.inheritance import markdown as inheritance_section

    lines += inheritance_section(metrics)

    from fracbench import calibration_report

    lines += calibration_report.markdown(metrics)
    lines += ["", "## Per feature", "", "Full table: `per_feature.csv`.", "", "![per-feature precision and recall](per_feature.png)",
              "", "## Provenance", "", "```"]
    git = prov["git"]
    lines += [f"gold       {prov['gold']} (sha256 {prov['gold_sha256']})",
              f"task       {prov['task']['name']} v{prov['task']['version']} hash {prov['task']['hash']} ({prov['task']['file']})",
              f"taxonomy   v{prov['taxonomy']['version']} sha256 {prov['taxonomy']['sha256']}",
              f"templates  sha256 {prov['templates_sha256']}",
              f"git        {describe(git)}",
              f"fracbench  {prov['fracbench']}, date {prov['date']}, seed {prov['seed']}, limit {prov['limit']}"]
    for model, pm in prov["models"].items():
        prompt = f"prompt {pm['prompt_variant']} ({pm['prompt_sha256'][:12]})" if pm.get("prompt_sha256") else "no prompt"
        lines.append(f"model      {model}: {json.dumps(pm['identity'], sort_keys=True)} decoding "
                     f"{json.dumps(pm['decoding'], sort_keys=True)} {prompt} control {pm['control']}")
    lines += ["```", ""]
    return "\n".join(lines)


def report_dir(out_dir, log=print) -> list[Path]:
    out = Path(out_dir)
    mpath = out / "metrics.json"
    if not mpath.is_file():
        raise FracdataError(f"{mpath} not found: run `fracbench score --out {out}` first")
    from fracbench.data import read_json

    metrics = read_json(mpath, "metrics file")
    try:
        text = markdown(metrics)  # first: it reads every part, so a file of another shape fails before any write
        from fracbench import calibration_report
        from fracbench.inheritance import write_csv as inheritance_csv

        written = write_csvs(metrics, out) + inheritance_csv(metrics, out)
        plots = [("comparison.png", plot_comparison), ("per_feature.png", plot_per_feature)]
        if calibration_report.has_probabilities(metrics):
            plots.append(("calibration.png", calibration_report.plot))
    except (KeyError, TypeError, AttributeError, ValueError, IndexError, StopIteration) as e:
        raise FracdataError(f"{mpath}: not a metrics file written by `fracbench score` ({type(e).__name__}: {e}); "
                            f"run `fracbench score --out {out}` again") from None
    for name, plot in plots:
        try:  # the file read as a metrics file above: a failure here is the drawing's, so say that
            with atomic_path(out / name) as tmp:
                plot(metrics, tmp)
        except (KeyError, TypeError, AttributeError, ValueError, IndexError, OverflowError) as e:
            raise FracdataError(f"{out / name}: could not draw the figure from {mpath} ({type(e).__name__}: {e})") from None
        written.append(out / name)
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text(text, encoding="utf-8")
    written.append(out / "report.md")
    tag = " (NOT A SCORE: --limit run)" if metrics["provenance"]["not_a_score"] else ""
    log(f"wrote {len(written)} files for {len(metrics['models'])} models{tag}: " + ", ".join(p.name for p in written))
    log(f"report: {out / 'report.md'}")
    return written


def run(args) -> int:
    report_dir(args.out)
    return 0
