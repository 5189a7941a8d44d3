"""Harvest open-access articles into OUT/: search, gate, fetch, stage, finish; resumable.

Per article (a search hit), in search order, until --limit articles are kept:
  search record   isOpenAccess, licence            -> not_open_access, licence_not_allowed
  PMC versions    the S3 listing of PMC123.*/       -> not_in_archive
  PMC record      is_pmc_openaccess, is_retracted, license_code, xml_url, media_urls
                                                    -> not_open_access, retracted, licence_not_allowed, no_full_text
  JATS            licence confirmed from the article, <fig> graphics listed
                                                    -> malformed_xml, licence_not_allowed, no_figures
  figure files    each graphic's file among the record's media, MD5-checked -> download_failed
Every outcome is one line of OUT/harvest.jsonl; rejects also go to OUT/rejects.jsonl.

Resumable without fetching anything twice: every answer is staged in OUT/.harvest/staging/
<PMCID>/ as it arrives (atomic writes; a staged file is reused when its MD5 matches the
record's), a finished article leaves OUT/.harvest/done/<PMCID>.json and its staging folder
is renamed to OUT/<PMCID>.<version>/ (so `fracdata mine OUT` never sees half an article), and
the search's pages are kept in OUT/.harvest/search.json with the cursor to continue from.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from fracdata.files import atomic_write_bytes
from fracdata.harvest import services
from fracdata.harvest.http import Client, FetchError
from fracdata.mine.licence import allowed, normalise_licence
from fracdata.records import Reject, sha256_bytes

MAX_XML_BYTES = 64 * 2**20
MAX_FILE_BYTES = 512 * 2**20  # figure files: PMC's largest TIFFs are ~100-300 MB


@dataclass(frozen=True)
class Settings:
    query: str  # as given (the default fractography query unless --query)
    since: int | None = None
    limit: int | None = None
    shard: tuple[int, int] = (0, 1)
    page_size: int = 1000  # Europe PMC's maximum: fewest search requests
    refresh: bool = False  # search again even when OUT holds a complete search

    def full_query(self) -> str:
        """The query sent: the user's, restricted to open-access articles in PMC (the only ones
        the PMC Cloud Service can serve), and to publication years >= since."""
        q = f"({self.query}) AND OPEN_ACCESS:y AND IN_PMC:y"
        return f"{q} AND PUB_YEAR:[{self.since} TO 9999]" if self.since else q


@dataclass
class Result:
    hits: int = 0  # search hits (whole search, before sharding)
    pages: int = 0  # search pages requested on this run
    in_shard: list = field(default_factory=list)
    entries: list = field(default_factory=list)  # ledger lines, in search order
    now: int = 0  # articles finished on this run
    reused: int = 0  # articles finished on an earlier run
    unprocessed: int = 0  # hits left after --limit was reached
    files: Counter = field(default_factory=Counter)  # fetched, reused (staged), bytes


def shard_of(hit: dict, n: int) -> int:
    """Which of n shards an article belongs to: by its id, so the split never depends on the
    order or paging of the search (sha256 mod n: uniform, stable across machines)."""
    key = hit.get("pmcid") or hit.get("doi") or f"{hit.get('source')}:{hit.get('id')}"
    return int(sha256_bytes(str(key).encode())[:12], 16) % n


def marker_name(hit: dict) -> str:
    """The done marker's name: the PMCID, else the search record's source and id (file-safe)."""
    return hit.get("pmcid") or re.sub(r"[^A-Za-z0-9._-]", "_", f"{hit.get('source')}-{hit.get('id')}")


def _load(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None  # missing, or damaged by an outside hand: treated as not done


def search(client: Client, settings: Settings, state: Path, res: Result, progress=None) -> list[dict]:
    """All hits of the query, continuing a saved incomplete search and reusing a complete one."""
    full = settings.full_query()
    key = sha256_bytes(json.dumps([full, settings.page_size]).encode())[:16]
    saved = _load(state / "search.json")
    if saved is None or saved.get("key") != key or (settings.refresh and saved.get("complete")):
        saved = {"key": key, "query": full, "cursor": "*", "complete": False, "hit_count": None, "hits": []}
    while not saved["complete"]:
        hits, nxt, count = services.search_page(client, full, saved["cursor"], settings.page_size)
        res.pages += 1
        saved["hits"] += hits
        saved["hit_count"], saved["cursor"], saved["complete"] = count, nxt, nxt is None
        atomic_write_bytes(state / "search.json", json.dumps(saved).encode(), durable=True)
        if progress:
            progress(len(saved["hits"]), count)
    res.hits = len(saved["hits"])
    return saved["hits"]


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Article:
    """One article's fetch, staged in `staging` and reusing whatever is already there."""

    def __init__(self, client: Client, hit: dict, staging: Path, out: Path, res: Result):
        self.client, self.hit, self.staging, self.out, self.res = client, hit, staging, out, res
        self.pmcid = hit["pmcid"]

    def _staged(self, name: str, md5: str | None) -> bytes | None:
        # staging first; then a finished folder whose done marker was lost (a kill between them)
        for folder in (self.staging, *sorted(p for p in self.out.glob(f"{self.pmcid}.*") if p.is_dir())):
            p = folder / name
            if p.is_file():
                data = p.read_bytes()
                if md5 is None or _md5(data) == md5:
                    return data
        return None

    def fetch(self, name: str, url: str, md5: str | None, max_bytes: int) -> bytes:
        data = self._staged(name, md5) if md5 else None
        if data is not None:
            self.res.files["reused"] += 1
            return data
        data = self.client.get("pmc", url, max_bytes)
        if md5 and _md5(data) != md5:
            raise FetchError(url, 200, f"MD5 {_md5(data)} is not the record's {md5}")
        self.stage(name, data)
        self.res.files["fetched"] += 1
        self.res.files["bytes"] += len(data)
        return data

    def stage(self, name: str, data: bytes) -> None:
        self.staging.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(self.staging / name, data)

    def cached_json(self, name: str, make):
        p = self.staging / name
        got = _load(p)
        if got is None:
            got = make()
            self.stage(name, json.dumps(got).encode())
        return got


def _rejected(hit: dict, reason: str, detail: str, **extra) -> dict:
    return {"pmcid": hit.get("pmcid"), "doi": hit.get("doi"), "title": hit.get("title"), "year": hit.get("year"),
            "status": "rejected", "reason": reason, "detail": detail, **extra}


def harvest_one(client: Client, hit: dict, out: Path, state: Path, res: Result) -> tuple[dict, bool]:
    """(ledger entry, final?) for one hit; a download failure is not final (a rerun retries it)."""
    from fracdata.mine.article import SourceError
    from fracdata.mine.jats import article_facts, graphic_candidates

    pmcid = hit.get("pmcid")
    if not pmcid or not services.PMCID_RE.match(pmcid):
        return _rejected(hit, "not_in_pmc", f"Europe PMC record {hit.get('source')}:{hit.get('id')} has no PMCID"), True
    if str(hit.get("open_access") or "").upper() != "Y":
        return _rejected(hit, "not_open_access", f"Europe PMC record: isOpenAccess={hit.get('open_access')}"), True
    lic = normalise_licence(hit.get("license"))
    if hit.get("license") and not allowed(lic):
        return _rejected(hit, "licence_not_allowed", f"Europe PMC record: {lic or hit['license']}",
                         licence=lic), True
    art = Article(client, hit, state / "staging" / pmcid, out, res)
    try:
        found = art.cached_json(".versions.json", lambda: services.versions(client, pmcid))
        if not found:
            return _rejected(hit, "not_in_archive", f"no version of {pmcid} in the PMC Cloud Service"), True
        version = max(found)
        prefix = f"{pmcid}.{version}"
        rec = _load(art.staging / f"{prefix}.json")
        if rec is None:
            rec, raw = services.record(client, pmcid, version)
            art.stage(f"{prefix}.json", raw)
        rec_lic = normalise_licence(rec.get("license_code"))
        base = {"version": version, "licence_record": rec.get("license_code")}
        if rec.get("is_pmc_openaccess") is not True:
            why = "an author manuscript" if rec.get("is_manuscript") else f"is_pmc_openaccess={rec.get('is_pmc_openaccess')}"
            return _rejected(hit, "not_open_access", f"PMC record {prefix}: {why}", **base), True
        if rec.get("is_retracted") is True:
            return _rejected(hit, "retracted", f"PMC record {prefix}: is_retracted", **base), True
        if not allowed(rec_lic):
            return _rejected(hit, "licence_not_allowed", f"PMC record {prefix}: {rec_lic or 'no licence code'}",
                             licence=rec_lic, **base), True
        xml_obj = services.obj(client, rec.get("xml_url") or "", prefix)
        if xml_obj is None:
            return _rejected(hit, "no_full_text", f"PMC record {prefix} names no XML in its prefix", **base), True
        xml = art.fetch(xml_obj.name, xml_obj.url, xml_obj.md5, MAX_XML_BYTES)
        try:
            facts = article_facts(xml, xml_obj.name)
        except SourceError as e:
            return _rejected(hit, e.reason, f"{xml_obj.name}: {e.detail}", **base), True
        if not allowed(facts.licence):
            said = facts.licence or (f"unrecognised ({facts.licence_raw[:200]})" if facts.licence_raw else "none stated")
            return _rejected(hit, "licence_not_allowed", f"the article states {said}; the PMC record said "
                             f"{rec.get('license_code')}", licence=facts.licence, **base), True
        media = {}
        for u in rec.get("media_urls") or []:
            o = services.obj(client, u, prefix)
            if o is not None:
                media.setdefault(o.name, o)
        wanted, missing = {}, []
        for href in facts.graphics:  # the file mine will resolve for each href (jats.resolve_graphic's order)
            name = next((n for n in graphic_candidates(href) if n in media), None)
            if name is None:
                missing.append(href)
            else:
                wanted.setdefault(name, media[name])
        if not wanted:
            return _rejected(hit, "no_figures", f"{len(facts.graphics)} figure graphics in the article, none among the "
                             f"record's {len(media)} media files", licence=facts.licence, **base), True
        files = {xml_obj.name: xml, f"{prefix}.json": (art.staging / f"{prefix}.json").read_bytes()}
        for name, o in wanted.items():
            files[name] = art.fetch(name, o.url, o.md5, MAX_FILE_BYTES)
    except FetchError as e:
        return _rejected(hit, "download_failed", str(e)), False
    entry = {"pmcid": pmcid, "version": version, "doi": facts.doi or hit.get("doi"), "title": hit.get("title"),
             "year": hit.get("year"), "journal": hit.get("journal"), "status": "kept", "licence": facts.licence,
             "licence_record": rec.get("license_code"), "licence_search": hit.get("license"), "folder": prefix,
             "files": [{"name": n, "bytes": len(d), "sha256": sha256_bytes(d)} for n, d in sorted(files.items())],
             "bytes": sum(len(d) for d in files.values()), "graphics": len(facts.graphics),
             "graphics_missing": missing}
    return entry, True


def finish(entry: dict, hit: dict, out: Path, state: Path) -> None:
    """Done marker first (durable), then the staging folder becomes OUT/<folder>/."""
    atomic_write_bytes(state / "done" / f"{marker_name(hit)}.json", json.dumps(entry).encode(), durable=True)
    staging = state / "staging" / str(entry["pmcid"])
    if entry["status"] == "kept":
        final = out / entry["folder"]
        for stale in out.glob(f"{entry['pmcid']}.*"):  # an older version, or a rename a kill interrupted
            if stale.is_dir() and stale != final:
                shutil.rmtree(stale)
        if staging.is_dir():
            (staging / ".versions.json").unlink(missing_ok=True)
            if final.exists():
                shutil.rmtree(final)
            os.replace(staging, final)
    elif staging.exists():
        shutil.rmtree(staging)


def complete(entry: dict, out: Path) -> bool:
    """A kept article whose folder still holds every file of its ledger line, at its size."""
    if entry.get("status") != "kept":
        return True
    folder = out / str(entry.get("folder"))
    try:
        return all((folder / f["name"]).stat().st_size == f["bytes"] for f in entry["files"])
    except (OSError, KeyError, TypeError):
        return False


def reject_record(entry: dict) -> dict:
    return Reject(stage="harvest", file=entry.get("pmcid") or entry.get("doi") or "search hit",
                  reason=entry["reason"], detail=entry.get("detail")).model_dump(exclude_none=True)


def harvest(client: Client, settings: Settings, out: Path, search_progress=None) -> Result:
    """Search, then fetch every hit of this shard in search order (see the module docstring)."""
    from tqdm import tqdm

    state = out / ".harvest"
    (state / "done").mkdir(parents=True, exist_ok=True)
    res = Result()
    hits = search(client, settings, state, res, search_progress)
    i, n = settings.shard
    res.in_shard = [h for h in hits if shard_of(h, n) == i]
    kept, seen = 0, set()
    with tqdm(total=len(res.in_shard), unit="article", desc="harvest", disable=None) as bar:
        for k, hit in enumerate(res.in_shard):
            if settings.limit is not None and kept >= settings.limit:
                res.unprocessed = len(res.in_shard) - k
                break
            pmcid = hit.get("pmcid")
            if pmcid and pmcid in seen:  # Europe PMC lists an article once; counted, never fetched twice
                res.entries.append(_rejected(hit, "duplicate_hit", f"{pmcid} listed again by the search"))
                bar.update()
                continue
            seen.add(pmcid)
            done = _load(state / "done" / f"{marker_name(hit)}.json")
            if done is not None and complete(done, out):
                entry = done
                res.reused += 1
            else:  # new, or its folder went missing or was damaged since: fetch (staged files are reused)
                entry, final = harvest_one(client, hit, out, state, res)
                if final:
                    finish(entry, hit, out, state)
                res.now += 1
            kept += entry["status"] == "kept"
            res.entries.append(entry)
            bar.update()
    return res
