"""The simulated teacher of `fracdata synth`: the oracle's labels with a set share of images wrong.

The study trained on GPT-5.2's labels and tested on human labels. How often GPT-5.2 agreed with
people is not in the paper: "84% agreement on a 500-image human review" is in the review page's
*simulated* author rebuttal (docs/study.md), so 0.84 is a stand-in, not the study's figure. The
synthetic corpus has a perfect oracle, so the demo needs a teacher that errs, to show when a student exceeds its
teacher (random errors average out) and when it inherits the teacher's confusion (systematic).

Agreement (the flag, default 0.84): the fraction of images whose teacher label set equals the
oracle's label set exactly. Exactly int(agreement x n + 0.5) images per file keep the oracle's
labels; each of the others gets one error that changes its set:
  random      one of its features, chosen uniformly, replaced by a feature drawn uniformly from
              the other synthetic features (the six common ones and fish_eye) not already there;
              the images to corrupt are a uniform random choice
  systematic  CONFUSION: ig_facet is called cleavage_facet (intergranular and cleavage facets
              are both flat brittle facets, a textbook confusion). The wrong images are drawn
              from those carrying ig_facet first; if the disagreement asks for more images than
              carry it, the rest get random errors (counted separately in synth.json). With the
              default corpus about 16.5% of the images carry ig_facet, so at 0.84 almost all of
              them are confused (and a couple of gold images get a random error).
The manual fish-eye set stands for the study's hand-collected rare-feature images and keeps its
human labels. Each (split, error mode) draws from its own seed stream, so the images and the oracle never change.
Several random teachers (`--random-teachers K`): random.jsonl is the first (the same file as with
one), random-2 ... random-K are more teachers with the same agreement whose errors are drawn
independently (their own seed streams), the simulated stand-ins for several labelling models
whose mistakes do not coincide; what `fracdata labels aggregate` and `make demo-labels` combine.
"""

from __future__ import annotations

from pathlib import Path

AGREEMENT = 0.84  # the simulated rebuttal's 84% (docs/study.md), as exact label-set agreement per image
MODES = ("random", "systematic")
CONFUSION = ("ig_facet", "cleavage_facet")  # systematic: the first is called the second
PURPOSE = 3  # seed-stream purpose index (0 plan, 1 papers, 2 images: see synth._split)


def simulate(oracle: list[list[str]], mode: str, agreement: float, rng, pool: tuple[str, ...], tax) -> tuple[list[list[str]], dict]:
    """Teacher labels for `oracle` (one feature list per image), and counts of what was changed."""
    if mode not in MODES:
        raise ValueError(f"unknown teacher error mode {mode!r}")
    n = len(oracle)
    n_wrong = n - int(agreement * n + 0.5)
    wrong: list[int] = []
    if mode == "systematic":
        carriers = [i for i, f in enumerate(oracle) if CONFUSION[0] in f]
        wrong = [carriers[k] for k in rng.permutation(len(carriers))[:n_wrong]]
    confused = set(wrong)
    rest = [i for i in range(n) if i not in confused]
    wrong += [rest[k] for k in rng.permutation(len(rest))[: n_wrong - len(wrong)]]
    out = [list(f) for f in oracle]
    for i in wrong:
        feats = out[i]
        if i in confused:
            new = [CONFUSION[1] if f == CONFUSION[0] else f for f in feats]
        else:
            k = int(rng.integers(len(feats)))
            options = [f for f in pool if f not in feats]
            new = feats[:k] + [options[int(rng.integers(len(options)))]] + feats[k + 1:]
        out[i] = tax.sort(new)
    agree = sum(a == b for a, b in zip(out, oracle))
    return out, {"images": n, "agree": agree, "agreement": agree / n if n else 1.0,
                 "confused": len(confused), "random": len(wrong) - len(confused)}


def teacher_names(modes: list[str], random_teachers: int = 1) -> list[tuple[str, str, int]]:
    """(file name, error mode, seed-stream index) per teacher: random-k (k >= 2) get streams 10 + k."""
    out = []
    for mode in modes:
        out.append((mode, mode, MODES.index(mode)))
        if mode == "random":
            out += [(f"random-{k}", "random", 10 + k) for k in range(2, random_teachers + 1)]
    return out


def write_teachers(folder: Path, seed: int, splits: dict, modes: list[str], agreement: float, tax, streams: dict,
                   pool: tuple[str, ...], random_teachers: int = 1) -> dict:
    """Write <name>.jsonl (the manifest images) and <name>.gold.jsonl per teacher; return the counts."""
    import numpy as np

    from fracdata.records import Labeler, LabelRecord, dump_jsonl

    folder.mkdir(exist_ok=True)
    counts: dict = {}
    for name, mode, stream in teacher_names(modes, random_teachers):
        lab = Labeler(kind="synthetic", model=f"fracdata-synth-teacher-{name}", taxonomy_version=tax.version)
        counts[name] = {}
        for split, items in splits.items():
            rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(streams[split], PURPOSE, stream)))
            feats, counts[name][split] = simulate([it["features"] for it in items], mode, agreement, rng, pool, tax)
            file = f"{name}.jsonl" if split == "manifest" else f"{name}.gold.jsonl"
            dump_jsonl([LabelRecord(id=it["id"], features=f, labeler=lab) for it, f in zip(items, feats)], folder / file)
    return counts
