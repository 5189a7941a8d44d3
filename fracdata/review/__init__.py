"""`fracdata review`: human review in Label Studio - the gold benchmark, the GPT audit, the manual collection.

    fracdata review gold   --manifest M [--ids FILE | --n N] --out DIR [--annotators 2] [--push]
    fracdata review audit  --labels L --manifest M --n 200 --out DIR [--show-gpt] [--push]
    fracdata review audit  --labels L --manifest M --suspects S --n 50 --out DIR [--push]   # likeliest errors first
    fracdata review manual --folder COLLECTION --out DIR [--push]
    fracdata review push   DIR                      # API route: project, images, tasks
    fracdata review import DIR [--export FILE]      # pull (API) or read an export (file route)

Two routes, the same records: through the API (LABEL_STUDIO_URL / LABEL_STUDIO_API_KEY or
--url / --token), or through files (DIR/label_config.xml and DIR/tasks.json imported in the
Label Studio UI; its JSON export read back with --export). Its own command rather than more
`fracdata audit` actions, because two of the three reviews are not audits of GPT labels; the
audit review reuses `fracdata audit`'s sampler and scorer. Modules: prepare (review folder,
tasks), config (labelling view), studio (HTTP API), export (Label Studio export -> decisions), gold
(consensus, kappa), labels (audit and manual outputs), suspects (an audit of `fracdata probe`'s suspect
labels), flow (push, import), cli (the command line).
docs/review.md.
"""

from fracdata.review.cli import add_arguments, run

__all__ = ["add_arguments", "run"]
