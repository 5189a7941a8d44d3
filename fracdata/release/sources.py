"""What `fracdata release dataset` reads: a finished build, and where each of its images came from.

A build folder holds rows keyed by image id but not the images' sources, so the release reads
them again from the build's own inputs as build.json records them: the manifest (its sha256 must
still be the one the build read, or the licences could belong to other images) and the manual
collection's optional manifest.jsonl. `--manifest` / `--manual` point at moved copies.

The licence gate is the miner's allow-list (fracdata/licence.py): an image may be
redistributed when its licence is CC BY, CC BY-SA, CC0 or public domain (panels are cut, resized
and rotated, so ND is out; a dataset may be used commercially, so NC is out); an image with no
licence recorded (a manual image without a manifest line) may not. Each image left out is one
reject `licence_not_allowed`, the miner's reason for the same rule.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from pydantic import BaseModel, ConfigDict, ValidationError

from fracdata.errors import FracdataError
from fracdata.records import ManifestRecord, Reject, Source, read_jsonl, sha256_file
from fracdata.untrusted import loads

STAGE = "release"
# fracdata's canonical licence (fracdata.licence.normalise_licence) -> the Hub's licence id;
# anything else is "other" on the Hub, and named in the card and in sources.csv.
HUB_LICENCES = {"CC BY 2.0": "cc-by-2.0", "CC BY 2.5": "cc-by-2.5", "CC BY 3.0": "cc-by-3.0", "CC BY 4.0": "cc-by-4.0",
                "CC BY-SA 3.0": "cc-by-sa-3.0", "CC BY-SA 4.0": "cc-by-sa-4.0", "CC0 1.0": "cc0-1.0"}


@dataclass(frozen=True)
class Origin:
    """One image's source as the build's inputs name it."""
    source: Source | None
    file: str  # the manifest (or manual folder) it was read from
    line: int | None
    licence: str | None  # canonical (normalise_licence), None = none recorded or not recognised

    @property
    def hub_licence(self) -> str:
        return HUB_LICENCES.get(self.licence or "", "other")


class _Input(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    path: str
    sha256: str | None = None


class _Build(BaseModel):
    """build.json, as far as the release reads it (fracdata/dataset/card.py writes it)."""
    model_config = ConfigDict(extra="allow")
    files: dict[str, str]
    inputs: list[_Input]
    input_hash: str | None = None
    config: dict = {}


def read_build(folder: Path) -> dict:
    """build.json of a finished build, its files checked against their recorded hashes."""
    path = folder / "build.json"
    if not folder.is_dir():
        raise FracdataError(f"{folder}: no such dataset folder (build one with `fracdata build`)")
    try:
        summary = loads(path.read_text(encoding="utf-8"))
    except OSError:
        raise FracdataError(f"{folder}: not a fracdata build (no build.json); build it with `fracdata build`") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FracdataError(f"{path}: not valid JSON ({e})") from None
    try:
        summary = _Build.model_validate(summary).model_dump()
    except ValidationError as e:
        err = e.errors()[0]
        raise FracdataError(f"{path}: not written by `fracdata build` ({'.'.join(map(str, err['loc'])) or 'file'}: "
                            f"{err['msg']})") from None
    for name, digest in summary["files"].items():
        f = folder / name
        if not f.is_file() or sha256_file(f) != digest:
            raise FracdataError(f"{f}: missing or changed since the build (build.json records sha256 {digest[:12]}…); "
                                "rebuild the dataset")
    return summary


def _input(summary: dict, role: str) -> list[dict]:
    return [i for i in summary["inputs"] if i["role"] == role]


def origins(summary: dict, build_json: Path, manifest: Path | None = None, manual: Path | None = None) -> dict[str, Origin]:
    """{image id: Origin} from the build's manifest and manual manifest (overridable)."""
    from fracdata.licence import normalise_licence

    listings: list[tuple[Path, str | None]] = []
    recorded = _input(summary, "manifest")
    if manifest is not None or recorded:
        want = recorded[0].get("sha256") if recorded else None
        path = manifest or Path(recorded[0]["path"])
        if not path.is_file():
            raise FracdataError(f"{build_json} names the manifest {path}, which is not there: pass --manifest PATH "
                                f"(the file the build read, sha256 {want[:12] if want else '?'}…)")
        if want and sha256_file(path) != want:
            raise FracdataError(f"{path}: not the manifest this dataset was built from (sha256 differs from the "
                                f"{want[:12]}… in {build_json}); pass --manifest with the original, or rebuild")
        listings.append((path, None))
    man = manual or (Path(_input(summary, "manual")[0]["path"]) if _input(summary, "manual") else None)
    if man is not None and (man / "manifest.jsonl").is_file():
        listings.append((man / "manifest.jsonl", str(man)))
    out: dict[str, Origin] = {}
    for path, folder in listings:
        for line, rec in read_jsonl(path, ManifestRecord, STAGE):
            if isinstance(rec, Reject) or rec.id in out:  # the build rejected these lines itself
                continue
            src = rec.source
            out[rec.id] = Origin(src, str(path), line, normalise_licence(src.licence) if src.licence else None)
    return out


def refusal(origin: Origin | None, manual_folder: str | None) -> str | None:
    """Why an image may not be redistributed (the reject's detail), or None when it may."""
    from fracdata.licence import ALLOWED_FAMILIES, allowed

    allow = ", ".join(sorted(ALLOWED_FAMILIES))
    if origin is None:
        where = f" (the manual collection {manual_folder} has no manifest.jsonl naming its source)" if manual_folder else ""
        return f"no licence recorded for this image{where}; redistributable licences: {allow}"
    if origin.licence is None:
        stated = origin.source.licence if origin.source else None
        return (f"licence {stated!r} is not one fracdata recognises" if stated else "no licence recorded") + \
            f"; redistributable licences: {allow}"
    if not allowed(origin.licence):
        why = []
        if re.search(r"\bND\b", origin.licence):
            why.append("ND forbids the derived images a dataset holds (cut panels, resized, rotated)")
        if re.search(r"\bNC\b", origin.licence):
            why.append("NC forbids the commercial use a public dataset allows")
        return f"licence {origin.licence} does not allow redistribution ({' and '.join(why) or 'not on the allow-list'}); " \
               f"redistributable licences: {allow}"
    return None


def attribution(origin: Origin | None) -> str | None:
    """The credit line a CC BY licence asks for: figure, paper, journal, year, DOI, licence."""
    if origin is None or origin.source is None:
        return None
    s = origin.source
    fig = f"{s.figure}{s.panel or ''}" if s.figure else (f"panel {s.panel}" if s.panel else "")
    paper = ", ".join(str(p) for p in (s.title and f"\"{s.title}\"", s.journal, s.year) if p)
    parts = [p for p in (fig, paper and f"from {paper}", s.doi and f"doi:{s.doi}", origin.licence) if p]
    return ", ".join(parts) or None
