"""`fracdata analyze`: the fine-tuned specialist reads a fractograph, a general model writes the report.

    fracdata analyze IMAGE|DIR|PATTERN... --specialist tiny-ft [--generalist gpt-5.5] [--context FILE]
                     [--review-threshold 0.9] [--out DIR]
    fracdata analyze --watch DIR --specialist tiny-ft [--log FILE] [--once]

Per image it writes <out>/<id12>.json (schema fracdata-analysis v2: every feature's calibrated
probability and whether the image needs a person), .md and .png (the image with the report
beside it); files with the same pixels are analysed once and listed in its report. Images it cannot read go to <out>/rejects.jsonl with the reason.
Exit status: 0 every image analysed with the generalist's report (or no generalist key),
1 some image rejected or reported by the specialist alone after a generalist failure or an
exhausted budget, 2 error (no specialist, the specialist failed, bad flags).
Modules: cli (the command line), one_file (one image: outputs or a reject), options (flags, models),
specialist, decide (probabilities, needs a person), inputs (folders, patterns, the same pixels
twice), generalist, schema, pipeline, report, watch.
"""

from fracdata.analyze.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
