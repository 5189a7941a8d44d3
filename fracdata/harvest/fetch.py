"""One article's fetch: the gates in order, every answer staged as it arrives (pipeline.py).

`harvest_one` returns the article's ledger entry and whether it is final: a download that
failed after the retries is not (the next run retries it, reusing every staged file).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from fracdata.files import atomic_write_bytes
from fracdata.harvest import services
from fracdata.harvest.http import Client, FetchError
from fracdata.harvest.result import Result
from fracdata.licence import allowed, normalise_licence
from fracdata.untrusted import loads
from fracdata.records import sha256_bytes

MAX_XML_BYTES = 64 * 2**20
MAX_FILE_BYTES = 512 * 2**20  # figure files: PMC's largest TIFFs are ~100-300 MB


def _load(path: Path):
    try:  # callers check the type they expect (a record, a list of versions)
        return loads(path.read_bytes().decode("utf-8"))
    except (OSError, ValueError):  # ValueError: not UTF-8, not JSON, nested too deeply
        return None


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


class Article:
    """One article's fetch, staged in `staging` and reusing whatever is already there."""

    def __init__(self, client: Client, hit: dict, staging: Path, out: Path, res: Result):
        self.client, self.hit, self.staging, self.out, self.res = client, hit, staging, out, res
        self.pmcid = hit["pmcid"]

    def _staged(self, name: str, md5: str | None) -> bytes | None:
        """A complete copy already here (every staged file was written whole, atomically):
        in staging, else in a finished folder whose done marker was lost; checked by MD5."""
        for folder in (self.staging, *sorted(p for p in self.out.glob(f"{self.pmcid}.*") if p.is_dir())):
            p = folder / name
            if p.is_file():
                data = p.read_bytes()
                if md5 is None or _md5(data) == md5:
                    if folder != self.staging:
                        self.stage(name, data)  # staging becomes the folder: it must hold every file
                    return data
        return None

    def fetch(self, name: str, url: str, md5: str | None, max_bytes: int) -> bytes:
        data = self._staged(name, md5)
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

    def cached_json(self, name: str, make, kind=list):
        got = _load(self.staging / name)
        if not isinstance(got, kind):  # missing, or damaged by an outside hand: ask again
            got = make()
            self.stage(name, json.dumps(got).encode())
        return got


def rejected(hit: dict, reason: str, detail: str, **extra) -> dict:
    return {"pmcid": hit.get("pmcid"), "doi": hit.get("doi"), "title": hit.get("title"), "year": hit.get("year"),
            "status": "rejected", "reason": reason, "detail": detail, **extra}


def harvest_one(client: Client, hit: dict, out: Path, state: Path, res: Result) -> tuple[dict, bool]:
    """(ledger entry, final?) for one hit; a download failure is not final (a rerun retries it)."""
    from fracdata.papers import SourceError, article_facts, graphic_candidates

    pmcid = hit.get("pmcid")
    if not pmcid or not services.PMCID_RE.match(pmcid):
        return rejected(hit, "not_in_pmc", f"Europe PMC record {hit.get('source')}:{hit.get('id')} has no PMCID"), True
    if str(hit.get("open_access") or "").upper() != "Y":
        return rejected(hit, "not_open_access", f"Europe PMC record: isOpenAccess={hit.get('open_access')}"), True
    lic = normalise_licence(str(hit["license"])) if hit.get("license") else None
    if hit.get("license") and not allowed(lic):
        return rejected(hit, "licence_not_allowed", f"Europe PMC record: {lic or hit['license']}",
                         licence=lic), True
    art = Article(client, hit, state / "staging" / pmcid, out, res)
    try:
        found = art.cached_json(".versions.json", lambda: services.versions(client, pmcid))
        found = [v for v in found if isinstance(v, int)]
        if not found:
            return rejected(hit, "not_in_archive", f"no version of {pmcid} in the PMC Cloud Service"), True
        version = max(found)
        prefix = f"{pmcid}.{version}"
        rec = _load(art.staging / f"{prefix}.json")
        if not isinstance(rec, dict) or rec.get("version") != version:
            rec, raw = services.record(client, pmcid, version)
            art.stage(f"{prefix}.json", raw)
        rec_lic = normalise_licence(str(rec["license_code"])) if rec.get("license_code") else None
        base = {"version": version, "licence_record": rec.get("license_code")}
        if rec.get("is_pmc_openaccess") is not True:
            why = "an author manuscript" if rec.get("is_manuscript") else f"is_pmc_openaccess={rec.get('is_pmc_openaccess')}"
            return rejected(hit, "not_open_access", f"PMC record {prefix}: {why}", **base), True
        if rec.get("is_retracted") is True:
            return rejected(hit, "retracted", f"PMC record {prefix}: is_retracted", **base), True
        # license_code null: open access without a machine-readable CC licence (PMC's words), as
        # for older articles that state CC BY only in their text: the article's statement decides
        if rec.get("license_code") and not allowed(rec_lic):
            return rejected(hit, "licence_not_allowed", f"PMC record {prefix}: {rec_lic or rec['license_code']}",
                             licence=rec_lic, **base), True
        xml_obj = services.obj(client, rec.get("xml_url") or "", prefix)
        if xml_obj is None:
            return rejected(hit, "no_full_text", f"PMC record {prefix} names no XML in its prefix", **base), True
        xml = art.fetch(xml_obj.name, xml_obj.url, xml_obj.md5, MAX_XML_BYTES)
        try:
            facts = article_facts(xml, xml_obj.name)
        except SourceError as e:
            return rejected(hit, e.reason, f"{xml_obj.name}: {e.detail}", **base), True
        if not allowed(facts.licence):
            said = facts.licence or (f"an unrecognised licence ({facts.licence_raw[:200]})" if facts.licence_raw
                                     else "no licence")
            return rejected(hit, "licence_not_allowed", f"the article states {said}; the PMC record said "
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
            return rejected(hit, "no_figures", f"{len(facts.graphics)} figure graphics in the article, none among the "
                             f"record's {len(media)} media files", licence=facts.licence, **base), True
        files = {xml_obj.name: xml, f"{prefix}.json": (art.staging / f"{prefix}.json").read_bytes()}
        for name, o in wanted.items():
            files[name] = art.fetch(name, o.url, o.md5, MAX_FILE_BYTES)
    except FetchError as e:
        return rejected(hit, "download_failed", str(e)), False
    entry = {"pmcid": pmcid, "version": version, "doi": facts.doi or hit.get("doi"), "title": hit.get("title"),
             "year": hit.get("year"), "journal": hit.get("journal"), "status": "kept", "licence": facts.licence,
             "licence_record": rec.get("license_code"), "licence_search": hit.get("license"), "folder": prefix,
             "files": [{"name": n, "bytes": len(d), "sha256": sha256_bytes(d)} for n, d in sorted(files.items())],
             "bytes": sum(len(d) for d in files.values()), "graphics": len(facts.graphics),
             "graphics_missing": missing}
    return entry, True
