"""`fracdata build`: validate, dedup, split, augment and render a LlamaFactory dataset.

    fracdata build                      # the embedded sample data/synthetic -> data/processed/synthetic
    fracdata build --manifest M --labels L [--labels L2] [--manual DIR] [--gold G] [--waivers W] --out OUT --seed 0

The command line is cli.py; the steps are pipeline.py's: read and validate every record
(inputs.py, against config.py's BuildConfig and Inputs); decode every image and check its id
(decode.py); keep the gold benchmark out: its papers, parents, copies and crops (guard.py,
dedup.py; overlays out: masks.py; keypoints: overlap.py; lookup.py, verify.py, selfcheck.py;
waivers.py); near dedup; split grouped by paper, then by shared fields (split.py, regions.py); rotate the training split;
rows and LlamaFactory's rules (sharegpt.py); write into a temp folder and swap it in (outdir.py);
the card (card.py). Output files and formats: docs/build.md, docs/formats.md.
"""

from fracdata.dataset.cli import add_arguments, run
from fracdata.dataset.config import BuildConfig, Inputs
from fracdata.dataset.pipeline import build

__all__ = ["BuildConfig", "Inputs", "add_arguments", "build", "run"]
