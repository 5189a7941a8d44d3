"""The two services `fracdata harvest` speaks, in their documented request/response formats.

Europe PMC RESTful search (https://europepmc.org/RestfulWebService):
  GET {base}/search?query=Q&format=json&resultType=core&pageSize=N&cursorMark=C&email=E
  -> {"hitCount": n, "nextCursorMark": c, "resultList": {"result": [{"pmcid", "doi", "title",
      "pubYear", "license", "isOpenAccess", "inPMC", ...}]}}
  Paging starts at cursorMark=* and follows nextCursorMark; the end is a missing
  nextCursorMark, one equal to the cursor just sent, or an empty page.

PMC Cloud Service (https://pmc.ncbi.nlm.nih.gov/tools/pmcaws/, the retrieval service for the
Open Access Subset since PMC's 2026 changes; FTP packages were removed in August 2026):
  versions  GET {base}/?list-type=2&prefix=PMC123.&delimiter=/   (S3 ListObjectsV2)
            -> <ListBucketResult><CommonPrefixes><Prefix>PMC123.1/</Prefix>...
  record    GET {base}/metadata/PMC123.1.json
            -> {"pmcid", "version", "doi", "is_pmc_openaccess", "is_retracted", "license_code",
                "xml_url": "s3://pmc-oa-opendata/PMC123.1/PMC123.1.xml?md5=...", "media_urls": [...]}
  files     GET {base}/PMC123.1/<name>   (each object's MD5 is in its URL's md5 parameter)
"""

from __future__ import annotations

import posixpath
import re
import urllib.parse
from dataclasses import dataclass

from fracdata.errors import FracdataError
from fracdata.untrusted import escape, loads, text_problem
from fracdata.harvest.http import Client, FetchError

EUROPEPMC_URL = "https://www.ebi.ac.uk/europepmc/webservices/rest"
PMC_URL = "https://pmc-oa-opendata.s3.amazonaws.com"
# Europe PMC throttles at 10 requests/s and 500/min (Europe PMC developer forum, Feb 2026):
# 8/s = 480/min keeps under both. No limit is published for PMC's S3 bucket; 3/s is NCBI's
# documented default for its APIs (E-utilities without a key), the nearest stated rule.
EUROPEPMC_RATE, PMC_RATE = 8.0, 3.0

BUCKET = "pmc-oa-opendata"
PMCID_RE = re.compile(r"^PMC\d+$")
MAX_PAGE_BYTES = 64 * 2**20  # a 1,000-hit core page is ~3 MB


def search_page(client: Client, query: str, cursor: str, page_size: int) -> tuple[list[dict], str | None, int]:
    """One page of hits, the next cursor (None at the end) and the total hit count."""
    url = client.url("europepmc", "search", {"query": query, "format": "json", "resultType": "core",
                                             "pageSize": page_size, "cursorMark": cursor, "email": client.email})
    try:
        body = client.get("europepmc", url, MAX_PAGE_BYTES)
    except FetchError as e:
        raise FracdataError(f"Europe PMC search failed ({e}); rerun to continue from the last page saved") from None
    try:
        data = loads(body)
        results = data["resultList"]["result"]
        count = int(data.get("hitCount", 0))
        if not isinstance(results, list):
            raise TypeError("resultList.result is not a list")
    except (ValueError, KeyError, TypeError) as e:
        raise FracdataError(f"Europe PMC search: unexpected answer from {url} ({type(e).__name__}: {e})") from None
    nxt = data.get("nextCursorMark")
    if not results or not nxt or nxt == cursor:
        nxt = None
    return [hit_of(r) for r in results if isinstance(r, dict)], nxt, count


def _obj(v) -> dict:
    return v if isinstance(v, dict) else {}


def _text(v) -> str | None:
    """A field of a search hit as text: any JSON scalar, and text UTF-8 cannot encode escaped (a hit
    is only metadata, kept to be written: the article's own XML is read for the record)."""
    return None if v is None or isinstance(v, (dict, list)) else escape(str(v))


def hit_of(r: dict) -> dict:
    """The fields of a Europe PMC core result that harvest uses (the rest is not stored)."""
    journal = _obj(_obj(r.get("journalInfo")).get("journal")).get("title") or r.get("journalTitle")
    pmcid = (_text(r.get("pmcid")) or "").strip().upper() or None
    doi = _text(r.get("doi"))
    return {"pmcid": pmcid, "doi": doi.lower() if doi else None, "title": _text(r.get("title")),
            "year": _text(r.get("pubYear")), "journal": _text(journal), "license": _text(r.get("license")),
            "open_access": _text(r.get("isOpenAccess")), "in_pmc": _text(r.get("inPMC")), "id": _text(r.get("id")),
            "source": _text(r.get("source"))}


def versions(client: Client, pmcid: str) -> list[int]:
    """Article versions of `pmcid` in the bucket, from its S3 listing (empty: not in the dataset)."""
    from lxml import etree

    url = client.url("pmc", "", {"list-type": 2, "prefix": f"{pmcid}.", "delimiter": "/"})
    body = client.get("pmc", url, 8 * 2**20)
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    try:
        root = etree.fromstring(body, parser)
    except etree.XMLSyntaxError as e:
        raise FetchError(url, 200, f"not an S3 listing ({e})") from None
    if root is None or etree.QName(root).localname != "ListBucketResult":
        raise FetchError(url, 200, "not an S3 listing")
    found = []
    for el in root.iter("{*}Prefix"):
        m = re.fullmatch(rf"{re.escape(pmcid)}\.(\d+)/", (el.text or "").strip())
        if m and el.getparent() is not None and etree.QName(el.getparent()).localname == "CommonPrefixes":
            found.append(int(m.group(1)))
    return sorted(set(found))


def record(client: Client, pmcid: str, version: int) -> tuple[dict, bytes]:
    """The JSON metadata object of one article version (parsed, and its bytes as served)."""
    url = client.url("pmc", f"metadata/{pmcid}.{version}.json")
    body = client.get("pmc", url, 8 * 2**20)
    try:
        rec = loads(body)
    except ValueError as e:
        raise FetchError(url, 200, f"record is not JSON ({e})") from None
    if not isinstance(rec, dict) or str(rec.get("pmcid", "")).upper() != pmcid or rec.get("version") != version:
        raise FetchError(url, 200, f"record is not {pmcid}.{version}'s")
    problem = text_problem(rec)
    if problem is not None:
        raise FetchError(url, 200, f"record holds text that cannot be written ({problem})")
    return rec, body


@dataclass(frozen=True)
class Obj:
    name: str  # file name inside the article version's prefix
    url: str  # https URL under the configured base
    md5: str | None


def obj(client: Client, s3_url: str, prefix: str) -> Obj | None:
    """An object URL from a record ("s3://pmc-oa-opendata/PMC123.1/gr1.jpg?md5=...") under the
    configured base; None for anything outside this bucket and this article version's prefix
    (a record names files; it never sends the client elsewhere)."""
    u = urllib.parse.urlsplit(str(s3_url))
    key = urllib.parse.unquote(u.path.lstrip("/"))
    name = posixpath.basename(key)
    if (u.scheme != "s3" or u.netloc != BUCKET or posixpath.dirname(key) != prefix or not name
            or name.startswith(".") or "\\" in name):
        return None
    md5 = urllib.parse.parse_qs(u.query).get("md5", [None])[0]
    return Obj(name=name, url=client.url("pmc", f"{urllib.parse.quote(prefix)}/{urllib.parse.quote(name)}"),
               md5=md5.lower() if md5 and re.fullmatch(r"[0-9a-fA-F]{32}", md5) else None)
