"""`fracdata mine`: figures, captions and citing excerpts from open-access papers.

    fracdata mine SOURCE... --out DIR [--shard i/N] [--allow-any-licence] [--force]
    fracdata mine merge SHARD_DIR... --out DIR

SOURCE is a JATS article (.nxml/.xml, figure files next to it), a PDF, an archive's per-article
.tar.gz package (JATS plus figures), or a folder searched recursively for them. DIR gets manifest.jsonl (fracdata.records.ManifestRecord), images/
(<id>.png), rejects.jsonl, evidence.jsonl (the filter's score and matched terms per id) and
mine.json (settings, version, counts). Modules: jats.py and pdf.py parse, the licence
allow-list (fracdata/licence.py, shared with harvest) and filter.py gate, panels.py splits, package.py reads .tar.gz packages, pipeline.py runs them (images
written by fracdata.images) with rerun state, merge.py merges shards, cli.py is the command line.
"""

from fracdata.mine.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
