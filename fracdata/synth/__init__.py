"""`fracdata synth`: the embedded synthetic fractograph corpus (manifest, oracle labels, manual, gold).

    fracdata synth --out data/raw/synthetic [--seed 0] [--n 3000] [--n-gold 200] [--n-manual 60]
                   [--orientation random|canonical] [--gold-orientation random|canonical|all]
                   [--teacher-agreement 0.84] [--teacher-errors random [systematic]] [--random-teachers K]

Writes, under OUT:
  manifest.jsonl + images/     the "mined" images in fake papers of 5-15 panels (ManifestRecord)
  labels.jsonl                 the oracle (LabelRecord, labeler.kind synthetic)
  manual/                      hand-collected rare-feature images (fish_eye), labeler.kind human
  gold.jsonl + gold/           the benchmark, drawn from another seed stream, disjoint by sha256
  teacher/<name>.jsonl         a simulated teacher's labels of the manifest images (teacher.py; random-2.. with --random-teachers)
  teacher/<mode>.gold.jsonl    the same teacher on the gold images (its row in fracbench)
  figures.jsonl                what each image carries (unit: single, zoom, tiles, roi, copy; microscope, data bar rows)
  synth.json                   the generation config, counts and file hashes
Same seed -> byte-identical files. The generator: corpus.py; textures: textures.py; overlays (data bars,
letters, arrows): overlays.py; one field seen several times: fields.py; figures and units: figures.py;
pairs for the guard's tests: pairs.py; paper text: text.py; teacher: teacher.py; the command line: cli.py.
`fracdata synth --papers N --out DIR` writes synthetic PDF and JATS papers with their ground truth instead
(papers.py, with paperfigs.py, papertext.py, paperpdf.py and paperjats.py).
"""

from fracdata.synth.cli import add_arguments, run
from fracdata.synth.corpus import COMMON, PAIRS, RARE, generate

__all__ = ["COMMON", "PAIRS", "RARE", "add_arguments", "generate", "run"]
