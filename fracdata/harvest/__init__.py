"""`fracdata harvest`: open-access fractography articles by query, through the archives' services.

    fracdata harvest --out DIR [--query Q] [--limit N] [--since YEAR] [--email E] [--shard i/N]
    fracdata harvest merge SHARD_DIR... --out DIR
    fracdata harvest --slurm N --out DIR ...      (print an sbatch array script instead)

Europe PMC's REST search finds the articles; PMC's Cloud Service (the Open Access Subset's
retrieval service) gives each one's record, JATS XML and figure files. DIR gets one folder per
article (`PMC123.1/`: the XML, its figure files, PMC's record), which `fracdata mine DIR` reads
directly, plus harvest.jsonl (one line per article), rejects.jsonl and harvest.json. Modules:
http.py (rate limit, identification, retries), services.py (the two APIs), fetch.py (one
article's gates and staging), result.py (what a run did), pipeline.py (search, loop, resume, lock),
merge.py (shards), slurm.py (array script), cli.py (the command line). docs/harvest.md.
"""

from fracdata.harvest.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
