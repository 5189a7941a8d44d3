"""The report's calibration section (Markdown) and calibration.png: per model with probabilities,
its reliability diagram (raw and calibrated) and its risk-coverage curve.

calibration.png is 1000 px wide and 400 px tall per model with probabilities (none: not written).
"""

from __future__ import annotations

from pathlib import Path

DPI = 100
ROW_IN = (10.0, 4.0)  # inches per model at 100 dpi -> 1000 x 400 px

INTRO = ("Every (image, feature) cell counts: p = the model's probability that the feature is in the image "
         "(its score for every taxonomy feature, fracdata/inference/feature_probs.py; *calibrated*: mapped by the "
         "calibration.json `fracdata calibrate` fitted on the dataset's val split), y = gold. Smooth ECE is the "
         "kernel-smoothed expected calibration error of Blasiok & Nakkiran (2023), with its bandwidth chosen by "
         "their fixed-point rule (no bins to choose); *floor* is the smooth ECE a perfectly calibrated model with "
         "the same probabilities scores (outcomes drawn from them), and p the share of such draws scoring at "
         "least as high: p < 0.05 says miscalibrated beyond sampling noise. An ECE counts noise as "
         "miscalibration, so near the floor the resampling interval can sit above the value. Brier = mean "
         "(p - y)^2. Precision @ coverage: of the features the model listed, only the most probable share is "
         "kept (the rest go to a person).")


def _fmt(v: dict) -> str:
    return f"{v['value']:.4f} [{v['ci_low']:.4f}, {v['ci_high']:.4f}]"


def _row(model: str, what: str, b: dict) -> str:
    sm, fl, rc = b["smooth_ece"], b["smooth_ece"]["floor"], b["risk_coverage"]
    at = rc["precision_at"]
    prec = f"{at['0.5']:.3f} / {at['1']:.3f}" if at else "- (nothing listed)"
    return (f"| {model} | {what} | {_fmt(sm)} | {fl['mean']:.4f} (p {fl['p_value']:.3f}) | {_fmt(b['binned_ece'])} | "
            f"{_fmt(b['brier'])} | {prec} |")


def has_probabilities(metrics: dict) -> bool:
    return any((m.get("calibration") or {}).get("available") for m in metrics["models"].values())


def markdown(metrics: dict) -> list[str]:
    """The section's lines; models scored before calibration existed (no `calibration` key) say so."""
    lines = ["", "## Calibration: per-feature probabilities against gold", "", INTRO, "",
             "| model | probabilities | smooth ECE [95% CI] | floor (p) | binned ECE, 10 bins [95% CI] | Brier [95% CI] "
             "| precision @ 50% / 100% coverage |", "|---|---|---|---|---|---|---|"]
    notes = []
    for model, m in metrics["models"].items():
        c = m.get("calibration") or {"available": False, "reason": "scored without calibration figures"}
        if not c["available"]:
            notes.append(f"- {model}: no probabilities ({c['reason']}).")
            continue
        lines.append(_row(model, "raw (the model's own)", c["raw"]))
        if c["calibrated"] is not None:
            fit = (c.get("calibration") or {}).get("fitted_on") or {}
            lines.append(_row(model, f"calibrated ({fit.get('val_images', '?')} val images)", c["calibrated"]))
        else:
            notes.append(f"- {model}: no calibration.json beside its checkpoint (run `fracdata calibrate`): raw only.")
    if not has_probabilities(metrics):
        lines = lines[:4] + ["No model here has probabilities."]
    else:
        b = next(c["raw"] for c in (m.get("calibration") or {} for m in metrics["models"].values()) if c.get("available"))
        lines += ["", f"{b['images']} images x {b['features']} features = {b['cells']:,} cells "
                      f"({b['positives']:,} positive in gold).", "", "![reliability diagrams and risk-coverage](calibration.png)"]
    return lines + ([""] + notes if notes else [])


def plot(metrics: dict, path: Path) -> None:
    """Per model with probabilities: reliability diagram (left), risk-coverage (right)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    models = [(n, m["calibration"]) for n, m in metrics["models"].items() if (m.get("calibration") or {}).get("available")]
    fig, axes = plt.subplots(len(models), 2, figsize=(ROW_IN[0], ROW_IN[1] * len(models)), dpi=DPI, squeeze=False,
                             layout="constrained")
    for (name, c), (ax, rx) in zip(models, axes):
        ax.plot([0, 1], [0, 1], color="0.6", lw=1, ls="--", label="perfect")
        for key, color in (("raw", "tab:red"), ("calibrated", "tab:blue")):
            b = c.get(key)
            if b is None:
                continue
            r = b["reliability"]
            sm = b["smooth_ece"]
            nan = lambda v: [float("nan") if x is None else x for x in v]  # noqa: E731 (no data there)
            ax.plot(r["t"], nan(r["curve"]), color=color, lw=2,
                    label=f"{key}: smooth ECE {sm['value']:.4f} (width {sm['sigma']:.3f})")
            ax.fill_between(r["t"], nan(r["low"]), nan(r["high"]), color=color, alpha=0.15)
            pts = [x for x in r["bins"] if x["n"]]
            ax.scatter([x["mean_p"] for x in pts], [x["freq"] for x in pts],
                       s=[10 + 150 * (x["n"] / b["cells"]) ** 0.5 for x in pts], color=color, alpha=0.6, edgecolors="none")
            rc = b["risk_coverage"]
            rx.plot(rc["coverage"], rc["precision"], color=color, lw=2, label=f"{key}")
        for a, ylim, xlabel, ylabel, title, where in (
                (ax, 1, "predicted probability", "observed frequency (gold)",
                 "reliability (kernel-smoothed, 95% band; dots: 10 bins, area ~ cells)", "upper left"),
                (rx, 1.02, "share of listed features kept (most probable first)", "precision of those kept",
                 "risk-coverage", "lower left")):
            a.set(xlim=(0, 1), ylim=(0, ylim), xlabel=xlabel, ylabel=ylabel)
            a.set_title(f"{name}: {title}", fontsize=9)
            a.legend(loc=where, fontsize=7)
    fig.savefig(path, dpi=DPI, format="png")
    plt.close(fig)
