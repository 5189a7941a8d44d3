"""`fracdata harvest`: the real client against a local Europe PMC + PMC Cloud Service
(tests/support/archive_server.py) serving real PLOS and eLife JATS articles
(tests/fixtures/jats/, tests/support/harvest_kit.py); then `fracdata mine` on what it wrote."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from fracdata.cli import main
from fracdata.records import sha256_file
from tests.support.archive_server import ArchiveStub, Fault
from tests.support.harvest_kit import real_article, real_corpus

ROOT = Path(__file__).resolve().parents[1]
FAST = ["--search-rate", "200", "--archive-rate", "200"]  # the rate limit itself is tested below


def argv(stub: ArchiveStub, out: Path, *extra: str) -> list[str]:
    return ["harvest", "--out", str(out), "--email", "fracdata-test@example.org", "--search-url", stub.search_url,
            "--archive-url", stub.archive_url, *extra]


def read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def gated_corpus(stub: ArchiveStub) -> None:
    """Five real articles that pass, and one of each reject, in this search order."""
    stub.add(*real_corpus())  # PMC100-PMC104
    # PLoS Biol 2011 states CC BY in prose only; PMC's record then has no machine-readable code
    stub.articles["PMC102"].license_code = None
    nc_jats = real_article("journal.pbio.2001413.xml", "PMC203", seed=3)
    nc_jats.xml = nc_jats.xml.replace(b"licenses/by/4.0", b"licenses/by-nc-nd/4.0")  # the article disagrees with PMC
    no_media = real_article("journal.pmed.0020402.xml", "PMC204", seed=4)
    no_media.media = {}
    stub.add(real_article("elife00240.xml", "PMC200", seed=1, search_license="cc by-nc-nd"),
             real_article("elife09853.xml", "PMC201", seed=2, open_access="N"),
             real_article("journal.pbio.1001044.xml", "PMC202", seed=5, license_code="CC BY-NC"),
             nc_jats, no_media,
             real_article("elife00240.xml", "PMC205", seed=6, in_archive=False),
             real_article("elife09853.xml", "PMC206", seed=7, is_retracted=True))
    stub.extra_hits.append({"id": "12345678", "source": "MED", "title": "Not in PMC", "isOpenAccess": "N"})


KEPT = {"PMC100": ["elife00240f001.jpg"], "PMC101": ["elife09853f001.jpg"], "PMC102": ["pbio.1001044.g001.jpg"],
        "PMC103": ["pbio.2001413.g001.jpg", "pbio.2001413.g002.jpg", "pbio.2001413.g003.jpg"],
        "PMC104": ["pmed.0020402.g001.jpg"]}
REJECTED = [
    ("PMC200", "licence_not_allowed", "Europe PMC record: CC BY-NC-ND"),
    ("PMC201", "not_open_access", "Europe PMC record: isOpenAccess=N"),
    ("PMC202", "licence_not_allowed", "PMC record PMC202.1: CC BY-NC"),
    ("PMC203", "licence_not_allowed", "the article states CC BY-NC-ND 4.0; the PMC record said CC BY"),
    ("PMC204", "no_figures", "1 figure graphics in the article, none among the record's 0 media files"),
    ("PMC205", "not_in_archive", "no version of PMC205 in the PMC Cloud Service"),
    ("PMC206", "retracted", "PMC record PMC206.1: is_retracted"),
    (None, "not_in_pmc", "Europe PMC record MED:12345678 has no PMCID"),
]


def test_harvest_gates_pages_and_writes_what_mine_reads(tmp_path, capsys):
    out = tmp_path / "harvested"
    with ArchiveStub() as stub:
        gated_corpus(stub)
        assert main(argv(stub, out, "--page-size", "4", *FAST)) == 0
        printed = capsys.readouterr().out.splitlines()
        served, requests = dict(stub.served), list(stub.requests)
        headers, queries = stub.headers, stub.queries
        # a rerun finds everything done: not one request reaches the archive
        assert main(argv(stub, out, "--page-size", "4", *FAST)) == 0
        assert stub.requests == requests
        assert "  0 finished now, 13 done earlier (reused)" in capsys.readouterr().out.splitlines()

    full = queries[0]
    assert full.endswith(") AND OPEN_ACCESS:y AND IN_PMC:y") and full.startswith('(("fracture surface"')
    assert printed[2:6] == [
        "  search: 13 hits (4 pages requested now)",  # 13 hits, 4 per page: every hit reached
        "  articles 13 = 5 kept + 8 rejected",
        "  13 finished now, 0 done earlier (reused)",
        "  rejects by reason: licence_not_allowed 3, no_figures 1, not_in_archive 1, not_in_pmc 1, not_open_access 1, "
        "retracted 1",
    ]
    # the search pages: cursorMark follows nextCursorMark from '*', the query and e-mail are sent each time
    pages = [parse_qs(urlsplit(t).query) for t, _, _ in requests if t.startswith("/europepmc/")]
    assert [p["cursorMark"][0] for p in pages][0] == "*" and len({p["cursorMark"][0] for p in pages}) == 4
    assert all(p["query"] == [full] and p["email"] == ["fracdata-test@example.org"] for p in pages)
    assert all(h["From"] == "fracdata-test@example.org" and "mailto:fracdata-test@example.org" in h["User-Agent"]
               for h in headers)

    ledger = read(out / "harvest.jsonl")
    assert [e.get("pmcid") for e in ledger] == [*KEPT, "PMC200", "PMC201", "PMC202", "PMC203", "PMC204", "PMC205",
                                                "PMC206", None]
    assert [(e.get("pmcid"), e["reason"], e["detail"]) for e in ledger if e["status"] == "rejected"] == REJECTED
    assert read(out / "rejects.jsonl") == [{"stage": "harvest", "file": p or "search hit", "reason": r, "detail": d}
                                           for p, r, d in REJECTED]
    for e in ledger[:5]:  # kept: the XML, PMC's record and each figure file, nothing else, as the ledger says
        folder = out / f"{e['pmcid']}.1"
        names = sorted([f"{e['pmcid']}.1.json", f"{e['pmcid']}.1.xml", *KEPT[e["pmcid"]]])
        assert sorted(p.name for p in folder.iterdir()) == names == [f["name"] for f in e["files"]]
        assert all(sha256_file(folder / f["name"]) == f["sha256"] for f in e["files"])
        assert e["bytes"] == sum(f["bytes"] for f in e["files"]) and e["graphics_missing"] == []
    assert [e["licence_record"] for e in ledger[:5]] == ["CC BY", "CC BY", None, "CC BY", "CC BY"]
    assert {e["pmcid"]: e["licence"] for e in ledger[:5]} == {
        "PMC100": "CC BY 3.0", "PMC101": "CC BY 4.0", "PMC102": "CC BY", "PMC103": "CC BY 4.0", "PMC104": "PDM"}
    assert all(n == 1 for n in served.values())  # nothing fetched twice
    touched = {t.split("/")[2].split(".")[0] for t in served if t.startswith("/pmc/PMC")}
    assert touched == {*KEPT, "PMC203", "PMC204"}  # objects only for articles that passed the record's gates
    listed = {parse_qs(urlsplit(t).query)["prefix"][0] for t in served if t.startswith("/pmc/?")}
    assert listed == {f"{p}." for p in [*KEPT, "PMC202", "PMC203", "PMC204", "PMC205", "PMC206"]}
    assert not [t for t in served if t.endswith(("mmc1.pdf", "thumbnail.gif"))]  # supplements are not figures
    for pmcid in ("PMC203", "PMC204"):  # their XML, read to confirm the licence and list figures, and nothing else
        assert [t for t in served if t.startswith(f"/pmc/{pmcid}.1/")] == [f"/pmc/{pmcid}.1/{pmcid}.1.xml"]
    assert not (out / ".harvest" / "staging").exists() or not list((out / ".harvest" / "staging").iterdir())

    # `fracdata mine` reads the folder as written: every figure, with caption, excerpts, DOI, licence
    assert main(["mine", str(out), "--out", str(tmp_path / "mined"), "--min-score", "-100", "--no-panels"]) == 0
    recs = read(tmp_path / "mined" / "manifest.jsonl")
    got = [(r["source"]["file"].split("/")[1], r["source"].get("figure"), r["source"]["doi"], r["source"]["licence"],
            len(r["excerpts"])) for r in recs]
    assert got == [
        ("PMC100.1", "Figure 1.", "10.7554/elife.00240", "CC BY 3.0", 1),
        ("PMC101.1", "Figure 1.", "10.7554/elife.09853", "CC BY 4.0", 1),
        ("PMC102.1", None, "10.1371/journal.pbio.1001044", "CC BY", 0),
        ("PMC103.1", "Fig 1", "10.1371/journal.pbio.2001413", "CC BY 4.0", 6),
        ("PMC103.1", "Fig 2", "10.1371/journal.pbio.2001413", "CC BY 4.0", 5),
        ("PMC103.1", "Fig 3", "10.1371/journal.pbio.2001413", "CC BY 4.0", 6),
        ("PMC104.1", None, "10.1371/journal.pmed.0020402", "PDM", 1),
    ]
    by = {(r["source"]["file"].split("/")[1], r["source"].get("figure")): r for r in recs}
    # real-paper details the miner must get right: a caption's title and text are separate
    # sentences, and an excerpt does not repeat the caption of a figure placed inside it
    assert by[("PMC101.1", "Figure 1.")]["caption"].startswith(
        "Protein and RNA accumulations can take on multiple forms within a cell. Kroschwald et al. report that")
    elife_ex = by[("PMC100.1", "Figure 1.")]["excerpts"][0]
    assert elife_ex.endswith("(Figure 1; Allmann and Baldwin, 2010).") and "wild tobacco plant N. attenuata" not in elife_ex
    assert by[("PMC104.1", None)]["caption"] == "Pharmacological and rAAV Gene Therapy Rescue of the Retinoid Cycle"
    # with the fracture filter on, none of these biology figures is kept (they are not fractographs)
    res_out = tmp_path / "filtered"
    assert main(["mine", str(out), "--out", str(res_out)]) == 0
    assert [r["reason"] for r in read(res_out / "rejects.jsonl")] == ["not_fracture"] * 7


def test_429_is_waited_out_and_500_retried_then_a_failure_resumes(tmp_path, capsys):
    out = tmp_path / "h"
    with ArchiveStub() as stub:
        stub.add(*real_corpus()[:2])
        stub.faults += [Fault("/pmc/PMC100.1/PMC100.1.xml", 429, retry_after=1),
                        Fault("/pmc/PMC101.1/elife09853f001.jpg", 500, times=2)]
        assert main(argv(stub, out, *FAST)) == 0
        printed = capsys.readouterr().out
        hits = [(t, s, at) for t, s, at in stub.requests if t == "/pmc/PMC100.1/PMC100.1.xml"]
        assert [s for _, s, _ in hits] == [429, 200]
        assert hits[1][2] - hits[0][2] >= 0.95  # Retry-After: 1 waited out
        assert [s for t, s, _ in stub.requests if t == "/pmc/PMC101.1/elife09853f001.jpg"] == [500, 500, 200]
        assert "(retries: 500 2, 429 1)" in printed
        assert [e["status"] for e in read(out / "harvest.jsonl")] == ["kept", "kept"]

        # a 500 that outlasts the retries: download_failed, not final; the rerun fetches only what is missing
        stub.add(real_corpus(2)[7])  # PMC107 (journal.pbio.1001044 again)
        stub.faults.append(Fault("/pmc/PMC107.1/pbio.1001044.g001.jpg", 503, times=None))
        assert main(argv(stub, out, "--retries", "1", "--refresh", *FAST)) == 0  # --refresh: search again
        failed = read(out / "harvest.jsonl")[2]
        assert (failed["pmcid"], failed["reason"]) == ("PMC107", "download_failed")
        assert failed["detail"].endswith("/pmc/PMC107.1/pbio.1001044.g001.jpg: HTTP 503 after 2 attempts")
        stub.faults.clear()
        before = dict(stub.served)
        assert main(argv(stub, out, *FAST)) == 0
        assert [e["status"] for e in read(out / "harvest.jsonl")] == ["kept", "kept", "kept"]
        new = {t: n - before.get(t, 0) for t, n in stub.served.items() if n - before.get(t, 0)}
        assert new == {"/pmc/PMC107.1/pbio.1001044.g001.jpg": 1}  # listing, record and XML were staged


def test_a_sigkill_mid_run_then_a_rerun_downloads_nothing_twice(tmp_path):
    out = tmp_path / "h"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    with ArchiveStub() as stub:
        stub.add(*real_corpus())
        stub.hold("/pmc/PMC103.1/pbio.2001413.g002.jpg")  # mid-article: its XML and first figure are staged
        proc = subprocess.Popen([sys.executable, "-m", "fracdata", *argv(stub, out, *FAST)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 60
        while stub.parked == 0 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert stub.parked == 1, proc.stderr.read().decode() if proc.poll() is not None else "never arrived"
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        stub.release(abort=True)
        assert sorted(p.name for p in out.iterdir() if p.name.startswith("PMC")) == ["PMC100.1", "PMC101.1",
                                                                                    "PMC102.1"]
        assert main(argv(stub, out, *FAST)) == 0
        assert all(n == 1 for n in stub.served.values()), {t: n for t, n in stub.served.items() if n > 1}
        assert [s for t, s, _ in stub.requests if t.endswith("pbio.2001413.g002.jpg")] == ["aborted", 200]
    ledger = read(out / "harvest.jsonl")
    assert [(e["pmcid"], e["status"]) for e in ledger] == [(p, "kept") for p in KEPT]
    for e in ledger:
        assert all(sha256_file(out / e["folder"] / f["name"]) == f["sha256"] for f in e["files"])
    assert not list(out.rglob("*.tmp"))


def test_a_lost_done_marker_refetches_only_the_small_answers(tmp_path):
    """Files already in a finished folder are reused (by MD5) and carried over, never lost."""
    out = tmp_path / "h"
    with ArchiveStub() as stub:
        stub.add(*real_corpus()[3:4])  # PMC103: 3 figures
        assert main(argv(stub, out, *FAST)) == 0
        before = dict(stub.served)
        (out / ".harvest" / "done" / "PMC103.json").unlink()
        assert main(argv(stub, out, *FAST)) == 0
        again = {t: n - before.get(t, 0) for t, n in stub.served.items() if n - before.get(t, 0)}
    assert again == {"/pmc/?list-type=2&prefix=PMC103.&delimiter=%2F": 1, "/pmc/metadata/PMC103.1.json": 1}
    e = read(out / "harvest.jsonl")[0]
    assert e["status"] == "kept" and len(e["files"]) == 5
    assert all(sha256_file(out / "PMC103.1" / f["name"]) == f["sha256"] for f in e["files"])


def test_a_second_harvest_on_the_same_out_stops_with_one_line(tmp_path, capsys):
    import threading

    with ArchiveStub() as stub:
        stub.add(*real_corpus()[:2])
        stub.hold("/pmc/PMC101.1/PMC101.1.xml")
        rc = []
        first = threading.Thread(target=lambda: rc.append(main(argv(stub, tmp_path / "h", *FAST))))
        first.start()
        deadline = time.monotonic() + 30
        while stub.parked == 0 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert main(argv(stub, tmp_path / "h", *FAST)) == 2
        assert re.fullmatch(rf"error: {re.escape(str(tmp_path))}/h: another harvest is writing here \(pid {os.getpid()} "
                            rf"on {re.escape(socket.gethostname())} since \d{{4}}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); "
                            r"wait for it, or give this one another --out", capsys.readouterr().err.splitlines()[-1])
        stub.release()
        first.join(30)
    assert rc == [0] and all(n == 1 for n in stub.served.values())


def test_two_shards_merged_equal_one_run(tmp_path, capsys):
    with ArchiveStub() as stub:
        gated_corpus(stub)
        stub.add(*real_corpus(3)[5:])  # 10 more kept articles, PMC105-PMC114
        assert main(argv(stub, tmp_path / "all", *FAST)) == 0
        for i in (0, 1):
            assert main(argv(stub, tmp_path / f"s{i}", "--shard", f"{i}/2", *FAST)) == 0
    capsys.readouterr()
    assert main(["harvest", "merge", str(tmp_path / "s0"), str(tmp_path / "s1"), "--out", str(tmp_path / "merged")]) == 0
    assert capsys.readouterr().out.splitlines()[0] == \
        "harvest merge: 2 ledgers, 23 lines read = 15 kept + 8 rejected + 0 duplicates"
    shards = [{e.get("pmcid") for e in read(tmp_path / f"s{i}" / "harvest.jsonl")} for i in (0, 1)]
    assert not shards[0] & shards[1] and shards[0] and shards[1]  # disjoint, both non-empty

    def key(e):
        return str(e.get("pmcid"))
    whole = sorted(read(tmp_path / "all" / "harvest.jsonl"), key=key)
    merged = sorted(read(tmp_path / "merged" / "harvest.jsonl"), key=key)
    assert merged == whole
    for e in merged:
        for f in e.get("files", []):
            assert (tmp_path / "merged" / e["folder"] / f["name"]).read_bytes() == \
                (tmp_path / "all" / e["folder"] / f["name"]).read_bytes()
    # a damaged shard file is refused, never linked
    victim = next(e for e in read(tmp_path / "s1" / "harvest.jsonl") if e["status"] == "kept")
    (tmp_path / "s1" / victim["folder"] / victim["files"][-1]["name"]).write_bytes(b"tampered")
    assert main(["harvest", "merge", str(tmp_path / "s1"), "--out", str(tmp_path / "m2")]) == 0
    bad = [e for e in read(tmp_path / "m2" / "harvest.jsonl") if e.get("pmcid") == victim["pmcid"]]
    assert [(e["status"], e["reason"]) for e in bad] == [("rejected", "file_hash_mismatch")]
    assert not (tmp_path / "m2" / victim["folder"]).exists()


def test_limit_since_and_the_rate_limit(tmp_path, capsys, monkeypatch):
    with ArchiveStub() as stub:
        stub.add(*real_corpus())
        # base URLs and the e-mail from the environment this time
        for k, v in (("FRACDATA_EUROPEPMC_URL", stub.search_url), ("FRACDATA_PMC_URL", stub.archive_url),
                     ("FRACDATA_EMAIL", "env@example.org")):
            monkeypatch.setenv(k, v)
        t0 = time.monotonic()
        assert main(["harvest", "--out", str(tmp_path / "h"), "--limit", "2", "--since", "2015", "--search-rate", "50",
                     "--archive-rate", "10"]) == 0
        wall = time.monotonic() - t0
        pmc = [at for t, _, at in stub.requests if t.startswith("/pmc/")]
        assert stub.queries[0].endswith(" AND PUB_YEAR:[2015 TO 9999]")
        assert {h["From"] for h in stub.headers} == {"env@example.org"}
    out = capsys.readouterr().out
    assert "  articles 2 = 2 kept + 0 rejected; stopped at --limit 2, 3 hits not processed" in out
    assert len(pmc) == 8  # 2 articles x (listing, record, XML, one figure)
    # 10 requests/s: 8 starts span >= 0.7 s (arrival times carry the machine's jitter; the exact
    # spacing is checked with the client's own clock below)
    assert pmc[-1] - pmc[0] >= 0.6 and wall >= 0.7


def test_the_rate_limit_spaces_request_starts():
    from fracdata.harvest.http import Client, Service

    now, sleeps = [0.0], []

    def sleep(dt):  # the client's clock: only its waits move it, so the spacing is exact
        sleeps.append(round(dt, 9))
        now[0] += dt
    with ArchiveStub() as stub:
        stub.add(*real_corpus()[:1])
        client = Client("a@b.org", [Service("pmc", stub.archive_url, 4.0)], sleep=sleep, clock=lambda: now[0])
        for _ in range(5):
            client.get("pmc", client.url("pmc", "metadata/PMC100.1.json"))
        stub.faults.append(Fault("/pmc/metadata/PMC100.1.json", 429, retry_after=7))
        client.get("pmc", client.url("pmc", "metadata/PMC100.1.json"))
    assert sleeps == [0.25, 0.25, 0.25, 0.25, 0.25, 7.0]  # 4/s = one start every 250 ms; Retry-After: 7 s
    assert client.services["pmc"].stats["requests"] == 7


def test_cli_errors_and_the_slurm_array(tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("FRACDATA_EMAIL", raising=False)
    base = ["harvest", "--out", str(tmp_path / "h")]
    for extra, err in [
        ([], "error: harvest needs a contact e-mail: --email you@example.org or FRACDATA_EMAIL=... (Europe PMC and "
             "PMC ask automated clients to identify themselves)"),
        (["--email", "nobody"], "error: harvest needs a contact e-mail ('nobody' is not an address): --email "
                                "you@example.org or FRACDATA_EMAIL=... (Europe PMC and PMC ask automated clients to "
                                "identify themselves)"),
        (["--email", "a@b.org", "--page-size", "5000"], "error: --page-size 5000: Europe PMC serves 1 to 1000 hits per page"),
        (["--email", "a@b.org", "--shard", "3/2"], "error: --shard 3/2: need 0 <= i < N (i counts from 0, as in --array=0-1)"),
        (["fracture"], "error: harvest: unexpected argument 'fracture' (did you mean `fracdata harvest merge "
                       "SHARD_DIR... --out DIR`?)"),
        (["--email", "a@b.org", "--search-url", "ftp://x"], "error: ftp://x: not an http(s) base URL"),
    ]:
        assert main(base + extra) == 2, extra
        assert capsys.readouterr().err.strip() == err
    assert main(["harvest", "merge", str(tmp_path / "nowhere"), "--out", str(tmp_path / "m")]) == 2
    assert capsys.readouterr().err.strip() == \
        f"error: {tmp_path}/nowhere: no harvest ledger (expected a shard folder with harvest.jsonl)"

    monkeypatch.setenv("FRACDATA_EMAIL", "lab@example.org")
    script = tmp_path / "harvest.sbatch"
    assert main(base + ["--slurm", "8", "--since", "2010", "--sbatch", str(script)]) == 0
    text = script.read_text()
    assert text.startswith("#!/bin/bash\n# Run: sbatch harvest.sbatch\n")
    for line in ("#SBATCH --array=0-7%4", "export FRACDATA_EMAIL=lab@example.org",
                 "  --search-rate 2.0 --archive-rate 0.75 \\",
                 f'  --shard "$SLURM_ARRAY_TASK_ID/8" --out {tmp_path}/h/shard-"$SLURM_ARRAY_TASK_ID"',
                 f"#   fracdata harvest merge {tmp_path}/h/shard-* --out {tmp_path}/h/all"):
        assert line in text.splitlines(), line
    assert "-m fracdata harvest --since 2010 \\" in text
    assert subprocess.run(["bash", "-n", str(script)]).returncode == 0


def test_retry_after_and_object_urls():
    from email.utils import format_datetime
    from datetime import datetime, timezone

    from fracdata.harvest.http import Client, Service, retry_after_s
    from fracdata.harvest.pipeline import shard_of
    from fracdata.harvest.services import obj

    assert retry_after_s("120") == 120.0 and retry_after_s(None) is None and retry_after_s("soon") is None
    when = format_datetime(datetime.fromtimestamp(1_000_030, tz=timezone.utc), usegmt=True)
    assert retry_after_s(when, now=1_000_000) == pytest.approx(30.0)
    c = Client("a@b.org", [Service("pmc", "http://127.0.0.1:9/pmc", 1.0)])
    ok = obj(c, "s3://pmc-oa-opendata/PMC1.2/gr%201.jpg?md5=" + "A" * 32, "PMC1.2")
    assert (ok.name, ok.url, ok.md5) == ("gr 1.jpg", "http://127.0.0.1:9/pmc/PMC1.2/gr%201.jpg", "a" * 32)
    for bad in ("s3://other-bucket/PMC1.2/g.jpg", "https://evil.example/PMC1.2/g.jpg", "s3://pmc-oa-opendata/PMC9.1/g.jpg",
                "s3://pmc-oa-opendata/PMC1.2/../PMC9.1/g.jpg", "s3://pmc-oa-opendata/PMC1.2/.hidden",
                "s3://pmc-oa-opendata/PMC1.2/sub/g.jpg"):
        assert obj(c, bad, "PMC1.2") is None, bad
    # the shard of an article depends on its PMCID only: stable across runs, machines and search order
    assert [shard_of({"pmcid": f"PMC{i}"}, 4) for i in range(8)] == [
        shard_of({"pmcid": f"PMC{i}", "title": "other"}, 4) for i in range(8)]
    assert sorted({shard_of({"pmcid": f"PMC{i}"}, 4) for i in range(200)}) == [0, 1, 2, 3]
