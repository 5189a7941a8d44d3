"""`fracdata calibrate`: fit a local checkpoint's per-feature probabilities on the dataset's val split.

    fracdata calibrate --model ENTRY --dataset-dir DIR [--out FILE]

The model answers every val image and scores every taxonomy feature (fracdata/inference/
feature_probs.py); a Platt map per feature, shrunk toward a shared one (fit.py), is fitted
against the val labels and written to calibration.json beside the checkpoint (the adapter's
folder for a LoRA entry), with its provenance. `fracdata analyze`, `fracdata serve` and
`fracbench infer` apply it. Modules: fit (the maps), run (the command).
"""

from __future__ import annotations

from fracdata.calibrate.run import add_arguments, run

__all__ = ["add_arguments", "run"]
