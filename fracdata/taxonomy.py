"""The feature taxonomy (`taxonomy.yaml`) and name normalisation.

Normalising is case-, space-, hyphen-, underscore- and plural-insensitive and uses synonyms.
An unknown name is never dropped here: callers get `UnknownFeature` (or `None` from
`lookup`) and must count it as a reject with the name in the reason.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path

import yaml

_KEEP_S = ("ss", "us", "is")


class UnknownFeature(ValueError):
    """A feature name that is neither an id, a display name nor a synonym."""

    def __init__(self, name: str):
        super().__init__(f"unknown feature {name!r}")
        self.name = name


@dataclass(frozen=True)
class Feature:
    id: str
    name: str
    group: str
    visual: str
    synonyms: tuple[str, ...]


def _singular(word: str) -> str:
    if len(word) <= 3 or word.endswith(_KEEP_S):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("ches", "shes", "xes")):
        return word[:-2]
    if word.endswith("s"):
        return word[:-1]
    return word


def norm_key(name: str) -> str:
    """'Fatigue-Striations' -> 'fatigue striation' (the lookup key)."""
    text = name.lower().replace("’", "'").replace("'", "")
    words = re.split(r"[\s_\-/]+", text.strip())
    return " ".join(_singular(w) for w in words if w)


class Taxonomy:
    def __init__(self, data: dict, path: str = "taxonomy.yaml"):
        unknown = set(data) - {"version", "groups", "features"}
        if unknown:
            raise ValueError(f"{path}: unknown keys {sorted(unknown)}")
        self.version = int(data["version"])
        self.groups: list[str] = list(data["groups"])
        self.features: list[Feature] = []
        self._index: dict[str, str] = {}
        for raw in data["features"]:
            extra = set(raw) - {"id", "name", "group", "visual", "synonyms"}
            if extra:
                raise ValueError(f"{path}: feature {raw.get('id')!r} has unknown keys {sorted(extra)}")
            feat = Feature(raw["id"], raw["name"], raw["group"], raw["visual"], tuple(raw.get("synonyms", ())))
            if feat.group not in self.groups:
                raise ValueError(f"{path}: feature {feat.id!r} has unknown group {feat.group!r}")
            self.features.append(feat)
            for alias in (feat.id, feat.name, *feat.synonyms):
                key = norm_key(alias)
                owner = self._index.setdefault(key, feat.id)
                if owner != feat.id:
                    raise ValueError(f"{path}: {alias!r} names both {owner!r} and {feat.id!r}")
        self.ids: list[str] = [f.id for f in self.features]
        self._order = {fid: i for i, fid in enumerate(self.ids)}
        self.by_id = {f.id: f for f in self.features}
        self.sha256 = hashlib.sha256(yaml.safe_dump(data, sort_keys=True).encode()).hexdigest()

    def lookup(self, name: str) -> str | None:
        """Canonical id for a name, or None when unknown."""
        return self._index.get(norm_key(name))

    def normalize(self, name: str) -> str:
        fid = self.lookup(name)
        if fid is None:
            raise UnknownFeature(name)
        return fid

    def normalize_all(self, names) -> tuple[list[str], list[str]]:
        """(canonical ids in taxonomy order without duplicates, unknown names in input order)."""
        found, unknown = set(), []
        for name in names:
            fid = self.lookup(name)
            if fid is None:
                unknown.append(name)
            else:
                found.add(fid)
        return self.sort(found), unknown

    def sort(self, ids) -> list[str]:
        return sorted(set(ids), key=self._order.__getitem__)


def load_taxonomy(path: str | Path | None = None) -> Taxonomy:
    if path is None:
        return _default()
    from fracdata.errors import FracdataError
    from fracdata.files import load_mapping

    data = load_mapping(path, "taxonomy")
    try:
        return Taxonomy(data, str(path))
    except (KeyError, TypeError) as e:  # a feature or the file lacks a required key
        raise FracdataError(f"{path}: not a usable taxonomy (missing or malformed {e})") from None
    except ValueError as e:  # Taxonomy's own messages already start with the path
        raise FracdataError(str(e)) from None


@lru_cache(maxsize=1)
def _default() -> Taxonomy:
    text = resources.files("fracdata").joinpath("taxonomy.yaml").read_text()
    return Taxonomy(yaml.safe_load(text), "fracdata/taxonomy.yaml")


# --- CLI: `fracdata taxonomy` prints it ---------------------------------------------------------


def add_arguments(p):
    p.add_argument("--taxonomy", help="taxonomy YAML (default: the packaged fracdata/taxonomy.yaml)")
    p.add_argument("--group", help="only this group")


def artifact(args) -> bool:
    """The table is for programs too (`fracdata taxonomy | cut -f1`): stdout holds only its rows."""
    return True


def run(args) -> int:
    import sys

    from fracdata.cli import artifact_stream

    tax = load_taxonomy(args.taxonomy)
    shown = [f for f in tax.features if args.group in (None, f.group)]
    out = artifact_stream(args)
    for f in shown:
        out.write(f"{f.id:24s} {f.group:14s} {f.name}\n")
    print(f"taxonomy v{tax.version}: {len(shown)} of {len(tax.ids)} features, {len(tax.groups)} groups", file=sys.stderr)
    return 0
