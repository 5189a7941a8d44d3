"""`fracdata probe`: is a label right? A classifier on frozen image embeddings says which to check first.

Modules: embed (the encoder's vision tower, embeddings cached by image id), inputs (manifest +
labels joined by id), fit (per-feature logistic regression, out-of-fold by paper), suspects
(confident learning), model (the probe as a benchmark row: fit on a dataset's train split),
cli (the command). A use-layer package: it imports the stages and fracdata.inference, never
fracbench. docs/labels.md.
"""

from __future__ import annotations

from fracdata.probe.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
