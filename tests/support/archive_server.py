"""A local stand-in for Europe PMC's REST search and PMC's Cloud Service, for tests and benchmarks.

A real HTTP server on 127.0.0.1 (random port) in a background thread; `fracdata harvest` is
pointed at it with --search-url / --archive-url (or FRACDATA_EUROPEPMC_URL / FRACDATA_PMC_URL).
It answers in the services' documented formats (fracdata/harvest/services.py):

  {base}/europepmc/search?query=..&format=json&resultType=core&pageSize=..&cursorMark=..&email=..
  {base}/pmc/?list-type=2&prefix=PMC123.&delimiter=/        S3 ListObjectsV2 XML
  {base}/pmc/metadata/PMC123.1.json                          the article version's record
  {base}/pmc/PMC123.1/<name>                                 the objects (XML, figures, ...)

    with ArchiveStub() as stub:
        stub.add(Article("PMC1", xml_bytes, {"g1.jpg": png}, license_code="CC BY"))
        stub.search_url, stub.archive_url
        stub.served      # Counter: request target (path?query) -> complete answers sent
        stub.requests    # [(target, status, time.monotonic() at arrival)], faults and aborted holds included

Faults: stub.faults.append(Fault("/pmc/PMC1.1/g1.jpg", 429, retry_after=1)) answers the next
request whose target starts with that text with the status (times=1 by default; None = always).
Holds: stub.hold("/pmc/PMC3.1/") parks the first matching request until stub.release(abort=True)
(the client is killed meanwhile: nothing is sent, `stub.parked` counts arrivals).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
import time
import urllib.parse
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Article:
    pmcid: str
    xml: bytes
    media: dict[str, bytes] = field(default_factory=dict)  # file name -> bytes
    version: int = 1
    license_code: str | None = "CC BY"  # the PMC record's
    search_license: str | None = "cc by"  # the Europe PMC record's
    open_access: str = "Y"
    is_pmc_openaccess: bool = True
    is_retracted: bool = False
    doi: str | None = None
    title: str = "A title"
    year: str = "2020"
    in_archive: bool = True  # False: the search lists it, the bucket has no version of it

    @property
    def prefix(self) -> str:
        return f"{self.pmcid}.{self.version}"

    def objects(self) -> dict[str, bytes]:
        return {f"{self.prefix}.xml": self.xml, **self.media}

    def record(self) -> dict:
        def s3(name, data):
            return f"s3://pmc-oa-opendata/{self.prefix}/{name}?md5={hashlib.md5(data).hexdigest()}"
        return {"pmcid": self.pmcid, "version": self.version, "pmid": None, "doi": self.doi, "mid": None,
                "title": self.title, "citation": "J Test. 2020", "is_pmc_openaccess": self.is_pmc_openaccess,
                "is_manuscript": False, "is_historical_ocr": False, "is_retracted": self.is_retracted,
                "license_code": self.license_code, "xml_url": s3(f"{self.prefix}.xml", self.xml),
                "text_url": None, "pdf_url": None, "media_urls": [s3(n, d) for n, d in self.media.items()]}

    def hit(self) -> dict:
        return {"id": self.pmcid, "source": "PMC", "pmcid": self.pmcid, "doi": self.doi, "title": self.title,
                "pubYear": self.year, "journalInfo": {"journal": {"title": "J Test"}}, "isOpenAccess": self.open_access,
                "inEPMC": "Y", "inPMC": "Y", "license": self.search_license}


@dataclass
class Fault:
    prefix: str  # request target (path?query) prefix
    status: int
    retry_after: float | None = None
    times: int | None = 1


def _cursor(offset: int) -> str:
    return base64.b64encode(f"offset:{offset}".encode()).decode()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):  # quiet
        pass

    def _send(self, status: int, body: bytes, ctype: str = "application/octet-stream", headers: dict | None = None):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def do_GET(self):  # noqa: N802
        stub: ArchiveStub = self.server.stub
        target, arrived = self.path, time.monotonic()
        stub.headers.append(dict(self.headers))
        with stub.lock:
            fault = next((f for f in stub.faults if target.startswith(f.prefix) and f.times != 0), None)
            if fault is not None and fault.times is not None:
                fault.times -= 1
            hold = next((h for h in stub.holds if target.startswith(h)), None)
            if hold is not None:
                stub.holds.remove(hold)
                stub.parked += 1
        if fault is not None:
            stub.requests.append((target, fault.status, arrived))
            headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
            return self._send(fault.status, b'{"error": "fault"}', "application/json", headers)
        if hold is not None:
            stub.released.wait(30)
            if stub.abort:
                stub.requests.append((target, "aborted", arrived))
                self.close_connection = True
                return
        status, body, ctype = stub.answer(target)
        stub.requests.append((target, status, arrived))
        self._send(status, body, ctype)
        if status == 200:
            with stub.lock:
                stub.served[target] += 1


class ArchiveStub:
    def __init__(self, port: int = 0):
        self.articles: dict[str, Article] = {}
        self.order: list[str] = []  # search order
        self.extra_hits: list[dict] = []  # hits with no article behind them (no PMCID, ...)
        self.served: Counter = Counter()
        self.requests: list = []
        self.headers: list = []
        self.queries: list = []
        self.faults: list[Fault] = []
        self.holds: list[str] = []
        self.parked = 0
        self.released, self.abort = threading.Event(), False
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self.server.daemon_threads = True
        self.server.stub = self
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.search_url, self.archive_url = f"{self.base}/europepmc", f"{self.base}/pmc"

    def add(self, *articles: Article) -> None:
        for a in articles:
            self.articles[a.pmcid] = a
            self.order.append(a.pmcid)

    def hold(self, prefix: str) -> None:
        self.holds.append(prefix)

    def release(self, abort: bool = False) -> None:
        self.abort = abort
        self.released.set()

    def hits(self) -> list[dict]:
        return [self.articles[p].hit() for p in self.order] + self.extra_hits

    def answer(self, target: str) -> tuple[int, bytes, str]:
        u = urllib.parse.urlsplit(target)
        q = {k: v[0] for k, v in urllib.parse.parse_qs(u.query).items()}
        if u.path == "/europepmc/search":
            return self._search(q)
        if u.path == "/pmc/" and q.get("list-type") == "2":
            return self._listing(q)
        if u.path.startswith("/pmc/metadata/") and u.path.endswith(".json"):
            pmcid, _, version = u.path[len("/pmc/metadata/"):-len(".json")].rpartition(".")
            a = self.articles.get(pmcid)
            if a is None or not a.in_archive or str(a.version) != version:
                return 404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml"
            return 200, json.dumps(a.record()).encode(), "application/json"
        if u.path.startswith("/pmc/"):
            prefix, _, name = urllib.parse.unquote(u.path[len("/pmc/"):]).partition("/")
            a = self.articles.get(prefix.rpartition(".")[0])
            if a is not None and a.in_archive and a.prefix == prefix and name in a.objects():
                return 200, a.objects()[name], "application/octet-stream"
        return 404, b"<Error><Code>NoSuchKey</Code></Error>", "application/xml"

    def _search(self, q: dict) -> tuple[int, bytes, str]:
        if q.get("format") != "json" or q.get("resultType") != "core" or "email" not in q or "query" not in q:
            return 400, b'{"error": "format=json, resultType=core, email and query expected"}', "application/json"
        self.queries.append(q["query"])
        cursor = q.get("cursorMark", "*")
        size = int(q.get("pageSize", 25))
        try:
            offset = 0 if cursor == "*" else int(base64.b64decode(cursor).decode().split(":")[1])
        except (ValueError, IndexError):
            return 400, b'{"error": "bad cursorMark"}', "application/json"
        hits = self.hits()
        page = hits[offset:offset + size]
        body = {"version": "6.9", "hitCount": len(hits), "request": {"queryString": q["query"], "cursorMark": cursor,
                                                                     "pageSize": size},
                "resultList": {"result": page}}
        if offset + size < len(hits):  # Europe PMC leaves nextCursorMark out at the end
            body["nextCursorMark"] = _cursor(offset + size)
        return 200, json.dumps(body).encode(), "application/json"

    def _listing(self, q: dict) -> tuple[int, bytes, str]:
        prefix = q.get("prefix", "")
        found = sorted({f"{a.prefix}/" for a in self.articles.values() if a.in_archive and a.prefix.startswith(prefix)})
        common = "".join(f"<CommonPrefixes><Prefix>{p}</Prefix></CommonPrefixes>" for p in found)
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
                f"<Name>pmc-oa-opendata</Name><Prefix>{prefix}</Prefix><KeyCount>{len(found)}</KeyCount>"
                f"<MaxKeys>1000</MaxKeys><Delimiter>/</Delimiter><IsTruncated>false</IsTruncated>{common}"
                "</ListBucketResult>")
        return 200, body.encode(), "application/xml"

    def __enter__(self):
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()
