"""Harvest open-access articles into OUT/: search, gate, fetch, stage, finish; resumable.

Per article (a search hit), in search order, until --limit articles are kept:
  search record   isOpenAccess, licence            -> not_open_access, licence_not_allowed
  PMC versions    the S3 listing of PMC123.*/       -> not_in_archive
  PMC record      is_pmc_openaccess, is_retracted, license_code, xml_url, media_urls
                                                    -> not_open_access, retracted, licence_not_allowed, no_full_text
  JATS            licence confirmed from the article, <fig> graphics listed
                                                    -> malformed_xml, licence_not_allowed, no_figures
  figure files    each graphic's file among the record's media, MD5-checked -> download_failed
Every outcome is one line of OUT/harvest.jsonl; rejects also go to OUT/rejects.jsonl. The
gates and the staging of one article are fetch.py; this module runs the search and the loop.

Resumable without fetching anything twice: every answer is staged in OUT/.harvest/staging/
<PMCID>/ as it arrives (atomic writes; a staged file is reused when its MD5 matches the
record's), a finished article leaves OUT/.harvest/done/<PMCID>.json and its staging folder
is renamed to OUT/<PMCID>.<version>/ (so `fracdata mine OUT` never sees half an article), and
the search's pages are kept in OUT/.harvest/search.json with the cursor to continue from.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.files import atomic_write_bytes, exclusive
from fracdata.harvest import services
from fracdata.harvest.fetch import harvest_one, rejected
from fracdata.harvest.http import Client
from fracdata.harvest.result import Result
from fracdata.untrusted import escape, loads
from fracdata.records import Reject, sha256_bytes


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


def shard_of(hit: dict, n: int) -> int:
    """Which of n shards an article belongs to: by its id, so the split never depends on the
    order or paging of the search (sha256 mod n: uniform, stable across machines)."""
    key = hit.get("pmcid") or hit.get("doi") or f"{hit.get('source')}:{hit.get('id')}"
    return int(sha256_bytes(str(key).encode())[:12], 16) % n


def marker_name(hit: dict) -> str:
    """The done marker's name: a valid PMCID (PMC + digits), else a hash of what the search said
    (`hit-<sha256 prefix>`). Never text from the search result itself: a hit whose pmcid is
    `../../../pwned` must not name a file outside OUT/.harvest/done/."""
    pmcid = hit.get("pmcid")
    if isinstance(pmcid, str) and services.PMCID_RE.match(pmcid):
        return pmcid
    key = json.dumps([pmcid, hit.get("source"), hit.get("id"), hit.get("doi")], sort_keys=True, default=str)
    return f"hit-{sha256_bytes(key.encode('utf-8', 'surrogatepass'))[:24]}"


def _load(path: Path) -> dict | None:
    try:
        obj = loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # ValueError: not UTF-8, not JSON, nested too deeply
        return None
    return obj if isinstance(obj, dict) else None  # missing, or damaged by an outside hand: treated as not done


def search(client: Client, settings: Settings, state: Path, res: Result, progress=None) -> list[dict]:
    """All hits of the query, continuing a saved incomplete search and reusing a complete one."""
    full = settings.full_query()
    key = sha256_bytes(json.dumps([full, settings.page_size]).encode())[:16]
    saved = _load(state / "search.json")
    if saved is None or saved.get("key") != key or (settings.refresh and saved.get("complete")):
        saved = {"key": key, "query": full, "cursor": "*", "complete": False, "hit_count": None, "hits": []}
    cursors = saved.setdefault("cursors", [saved["cursor"]])  # every cursor asked, to catch one that cycles
    while not saved["complete"]:
        hits, nxt, count = services.search_page(client, full, saved["cursor"], settings.page_size)
        res.pages += 1
        if nxt is not None and nxt in cursors:  # A -> B -> A: the same pages again, for ever
            raise FracdataError(f"Europe PMC search: the cursor {escape(nxt)[:80]!r} came back after {len(cursors)} "
                                f"pages ({len(saved['hits'])} of {count} hits read): the service is cycling; rerun "
                                "later (the pages read so far are kept)")
        saved["hits"] += hits
        # the reported hit count bounds the pages: a service that goes on past it is not believed
        full_pages = -(-count // settings.page_size) + 1 if count else 1
        done = nxt is None or len(saved["hits"]) >= count or len(cursors) >= full_pages
        saved["hit_count"], saved["cursor"], saved["complete"] = count, nxt, done
        if nxt is not None:
            cursors.append(nxt)
        atomic_write_bytes(state / "search.json", json.dumps(saved).encode(), durable=True)
        if progress:
            progress(len(saved["hits"]), count)
    res.hits = len(saved["hits"])
    return saved["hits"]


def finish(entry: dict, hit: dict, out: Path, state: Path) -> None:
    """Done marker first (durable), then the staging folder becomes OUT/<folder>/."""
    atomic_write_bytes(state / "done" / f"{marker_name(hit)}.json", json.dumps(entry).encode(), durable=True)
    staging = state / "staging" / marker_name(hit)  # never a path from the hit's raw pmcid (`../..`)
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
    state = out / ".harvest"
    (state / "done").mkdir(parents=True, exist_ok=True)
    # One harvest per OUT at a time: a second one would fetch the same articles again.
    with exclusive(state / "lock", out, "harvest", "wait for it, or give this one another --out"):
        return _harvest(client, settings, out, state, search_progress)


def _harvest(client: Client, settings: Settings, out: Path, state: Path, search_progress) -> Result:
    from tqdm import tqdm

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
                res.entries.append(rejected(hit, "duplicate_hit", f"{pmcid} listed again by the search"))
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
