"""`fracdata taxonomy`: print the feature taxonomy."""

from __future__ import annotations

from fracdata.taxonomy import load_taxonomy


def add_arguments(p):
    p.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged fracdata/taxonomy.yaml)")
    p.add_argument("--group", help="only this group")


def run(args) -> int:
    tax = load_taxonomy(args.taxonomy)
    shown = [f for f in tax.features if args.group in (None, f.group)]
    for f in shown:
        print(f"{f.id:24s} {f.group:14s} {f.name}")
    print(f"taxonomy v{tax.version}: {len(shown)} of {len(tax.ids)} features, {len(tax.groups)} groups")
    return 0
