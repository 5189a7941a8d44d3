"""`fracdata release`: share what was built the way the field shares it (docs/release.md).

    fracdata release dataset [DATASET_DIR] --out OUT [--variants full,no_rotation] [--repo ORG/NAME] [--push ORG/NAME]
    fracdata release model RUN [--metrics reports/bench/metrics.json] [--bench-model NAME] [--licence ID] [--push ORG/NAME]

dataset: a `fracdata build` as Parquet with an Image feature, a Hub dataset card and a
dataset_info.json LlamaFactory trains from (the folder, or the Hub through `REMOTE:`); images whose
licence forbids redistribution left out and counted (dataset.py, sources.py, parquet.py,
dataset_card.py). model: a training run's model card (model.py, run_facts.py, model_card.py).
`--push` commits to the Hub with the user's token (hub.py); nothing uploads otherwise.
Needs the `release` extra (datasets, huggingface-hub); `--help` works without it.
"""

from fracdata.release.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
