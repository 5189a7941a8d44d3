"""Hostile input, round three (issue 24): outputs that overwrite inputs, loops that feed
themselves, names from remote data, whole-term parsing, option values, 16-bit contrast, a
flooded server, and messages that tell the truth.

Each case runs the real CLI in a subprocess (tests/support/hostile.py) and checks the promise
(exit 0/1/2, never a traceback, exit 2 ends with one `error:` line) and then its own point: the
input byte-identical afterwards, what was paid, what was written where.
Cases that take more than a few seconds (process start included) say "slow:" in a comment.
"""

from __future__ import annotations

import base64
import json
import os
import re
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from fracdata.taxonomy import load_taxonomy
from tests.support.hostile import ROOT, check, run
from tests.support.hostile_corpus import api_entry, color_gold, write
from tests.support.label_kit import make_manifest, read
from tests.support.openai_server import Fault, OpenAIStub, text_of

TAX = load_taxonomy()
KEY = "sk-hostile-0123456789"


def answer(kind, body):
    k = int(text_of(body).split("[[img-")[1].split("]]")[0]) if "[[img-" in text_of(body) else 0
    return {"image_type": "SEM fractograph", "features": [{"id": TAX.ids[k % len(TAX.ids)], "evidence": "seen"}],
            "material": "steel", "magnification": None, "rationale": "r"}


def label(src: str, inp, out, stub, *extra):
    return run(["label", src, inp, "--out", out, "--backoff-base", "0.02", *extra],
               env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": stub.base_url})


def one_error(r, *parts: str) -> str:
    """The run's one error line, holding every part."""
    check(r, (2,))
    assert len(r.errors) == 1 and all(p in r.errors[0] for p in parts), r.errors
    return r.errors[0]


# -- 1. no command writes over its input --------------------------------------------------------
def test_label_never_writes_over_its_manifest_or_gold_file(tmp_path):
    # slow: six label runs (~12 s)
    manifest, ids = make_manifest(tmp_path / "m", 2)
    gold, _, _ = color_gold(tmp_path / "g", 2)
    (tmp_path / "link.jsonl").symlink_to(manifest)
    os.link(gold, tmp_path / "hard.jsonl")
    before = {p: p.read_bytes() for p in (manifest, gold)}
    with OpenAIStub(responder=answer) as stub:
        one_error(label("--gold", gold, gold, stub), f"{gold}: is the input {gold}", "would destroy that input")
        one_error(label("--manifest", manifest, manifest, stub), f"{manifest}: is the input {manifest}")
        one_error(label("--manifest", manifest, tmp_path / "link.jsonl", stub), "is a symlink to the input")
        one_error(label("--gold", gold, tmp_path / "hard.jsonl", stub), "is a hard link to the input")
        # a sidecar that is the input: --cache on the gold file
        one_error(label("--gold", gold, tmp_path / "l.jsonl", stub, "--cache", gold), f"{gold}: is the input")
        assert stub.completions == 0
    assert {p: p.read_bytes() for p in before} == before  # byte-identical


def test_an_existing_output_of_another_kind_is_refused_unless_overwrite_and_resume_still_works(tmp_path):
    # slow: four label runs (~10 s)
    manifest, ids = make_manifest(tmp_path / "m", 2)
    other = write(tmp_path / "notes.jsonl", '{"id": "x", "image": "y.png"}\n')
    with OpenAIStub(responder=answer) as stub:
        one_error(label("--manifest", manifest, other, stub), f"{other}: exists and is not a labels file",
                  "line 1 is not a LabelRecord", "pass --overwrite")
        assert other.read_text() == '{"id": "x", "image": "y.png"}\n' and stub.completions == 0
        check(label("--manifest", manifest, other, stub, "--overwrite"), (0,))
        assert sorted(x["id"] for x in read(other)) == sorted(ids) and stub.completions == 2
        r = check(label("--manifest", manifest, other, stub), (0,))  # its own file now: a rerun resumes
        assert "2 already in" in r.stdout and stub.completions == 2


def test_out_below_a_regular_file_says_so(tmp_path):
    manifest, _ = make_manifest(tmp_path / "m", 1)
    write(tmp_path / "f.txt", "a file\n")
    with OpenAIStub(responder=answer) as stub:
        line = one_error(label("--manifest", manifest, tmp_path / "f.txt" / "labels.jsonl", stub),
                         f"{tmp_path / 'f.txt'} is a file, not a folder")
        assert line.startswith("error: ") and stub.completions == 0  # one line, exit 2, nothing paid
    assert (tmp_path / "f.txt").read_text() == "a file\n"  # and the file in the way is left as it was


def test_every_stage_refuses_an_output_that_is_one_of_its_inputs(tmp_path):
    # slow: seven short runs of six commands (~20 s)
    from tests.support.pdfs import texture, write_pdf

    manifest, ids = make_manifest(tmp_path / "m", 2)
    labels = write(tmp_path / "m" / "labels.jsonl", "".join(
        json.dumps({"id": i, "features": ["gas_pore"], "labeler": {"kind": "human"}}) + "\n" for i in ids))
    gold, _, _ = color_gold(tmp_path / "g", 2)
    pdf = write_pdf(tmp_path / "paper.pdf", [[("fig", texture(1), "Fig. 1. Fracture surface.")]])
    context = write(tmp_path / "context.txt", "a steel shaft\n")
    notes = tmp_path / "notes"
    write(notes / "thesis.tex", "keep me")
    before = {p: p.read_bytes() for p in (manifest, labels, gold, pdf, context, notes / "thesis.tex")}
    entry = api_entry(tmp_path, "api", "http://127.0.0.1:9/v1", None)
    cases = [  # (argv, program, what the one error line holds)
        (["build", "--manifest", manifest, "--labels", labels, "--out", tmp_path / "m"], "fracdata",
         f"the input {manifest} is inside it"),
        (["mine", pdf, "--out", pdf], "fracdata", f"{pdf}: is the input {pdf}"),
        (["mine", pdf, "--out", notes], "fracdata", f"{notes}: exists and is not a mine output folder"),
        (["infer", "--model", entry, "--gold", gold, "--out", tmp_path / "b", "--cache", gold], "fracbench",
         f"{gold}: is the input {gold}"),
        (["analyze", "--watch", tmp_path / "g" / "img", "--specialist", entry, "--log", context, "--context", context],
         "fracdata", f"{context}: is the input {context}"),
        (["harvest", "--email", "x@example.org", "--out", notes], "fracdata",
         f"{notes}: exists and is not a harvest folder (it holds files and no .harvest)"),
        (["synth", "--out", context / "corpus"], "fracdata", f"{context} is a file, not a folder"),
    ]
    for argv, program, message in cases:
        r = check(run(argv, program=program), (2,))
        assert len(r.errors) == 1 and message in r.errors[0], (argv, r.errors)
    assert {p: p.read_bytes() for p in before} == before
    assert sorted(p.name for p in notes.iterdir()) == ["thesis.tex"]


# -- 2. watchers never read their own outputs; every command that pays has a cap ------------------
def test_watch_with_out_in_the_watched_folder_analyses_each_image_once_and_once_ends(tmp_path):
    # slow: two watch runs (~10 s)
    from tests.support.analyze_kit import GEN_KEY, GEN_KEY_ENV, gen_entry, gen_responder, make_images, prices, spec_entry
    from tests.support.analyze_kit import spec_responder

    folder = tmp_path / "scope"
    make_images(folder, 2)
    with OpenAIStub(responder=spec_responder) as spec, OpenAIStub(responder=gen_responder, api_key=GEN_KEY) as gen:
        argv = ["analyze", "--watch", folder, "--out", folder, "--once", "--settle", "0", "--poll", "0.2",
                "--specialist", spec_entry(tmp_path, spec.base_url), "--generalist", gen_entry(tmp_path, gen.base_url),
                "--prices", prices(tmp_path)]
        r = check(run(argv, env={GEN_KEY_ENV: GEN_KEY}, timeout=120), (0,))
        assert "analysed 2, rejected 0" in r.stdout and (spec.completions, gen.completions) == (2, 2)
        assert len(list(folder.glob("*.png"))) == 4  # 2 images + 2 report images, nothing of a report's report
        r = check(run(argv, env={GEN_KEY_ENV: GEN_KEY}, timeout=120), (0,))  # again: its outputs are skipped
        assert "analysed 0" in r.stdout and "skipped 2 of its own outputs" in r.stdout
        assert (spec.completions, gen.completions) == (2, 2)


def test_paying_commands_print_a_default_cap_that_holds(tmp_path):
    # slow: two runs (~8 s)
    from tests.support.analyze_kit import GEN_KEY, GEN_KEY_ENV, gen_entry, gen_responder, make_images, spec_entry
    from tests.support.analyze_kit import spec_responder

    # the generalist at $1,000 per 1M output tokens: one request's worst case (16,000) is $16 > the $10 default
    expensive = write(tmp_path / "prices.yaml", "models:\n  gpt-5.5: {input: 1.0, cached_input: 0.1, output: 1000.0}\n")
    img, = make_images(tmp_path / "img", 1)
    with OpenAIStub(responder=spec_responder) as spec, OpenAIStub(responder=gen_responder, api_key=GEN_KEY) as gen:
        r = check(run(["analyze", img, "--specialist", spec_entry(tmp_path, spec.base_url), "--generalist",
                       gen_entry(tmp_path, gen.base_url), "--prices", expensive, "--out", tmp_path / "a"],
                      env={GEN_KEY_ENV: GEN_KEY}), (1,))
        assert "budget: $10.00 for this run (the default; raise it with --budget-usd)" in r.stdout
        assert gen.completions == 0  # not sent: it could have cost more than the cap
        a = json.loads(next((tmp_path / "a").glob("*.json")).read_text())
        assert [f["kind"] for f in a["flags"]] == ["budget_exhausted"]
    manifest, _ = make_manifest(tmp_path / "m", 1)
    with OpenAIStub(responder=answer) as stub:
        r = check(label("--manifest", manifest, tmp_path / "l.jsonl", stub), (0,))
    assert "budget: $100.00 for this run (the default; raise it with --budget-usd)" in r.stdout
    assert re.search(r"cost this run: \$[\d.]+ of budget \$100\.00", r.stdout)


# -- 3. mine streams its PDF images -------------------------------------------------------------
def test_mine_decodes_pdf_images_one_at_a_time_and_keeps_no_decoded_copy(tmp_path):
    """The mechanism behind benchmarks/perf/mine_memory.py (12 pages within 1.2x of 1 page):
    parsing decodes nothing, each loader decodes one image and leaves pypdf's cache empty."""
    from fracdata.mine.pdf import parse_pdf
    from tests.support.pdfs import texture, write_pdf

    pages = [[("fig", texture(k, (400, 300)), f"Fig. {k + 1}. Fracture surface with fatigue striations.")]
             for k in range(4)]
    pdf = write_pdf(tmp_path / "p.pdf", pages)
    art = parse_pdf(pdf)
    assert len(art.figures) == 4 and all(callable(f.image) for f in art.figures)
    reader = art.figures[0].image.reader  # the loaders share the document's one reader

    def cached() -> int:  # image XObjects of the document whose decoded stream pypdf holds
        return sum(1 for p in reader.pages for k in p.images.keys()
                   if getattr(p["/Resources"]["/XObject"][k].get_object(), "decoded_self", None) is not None)

    assert cached() == 0
    for k, fig in enumerate(art.figures):
        im = fig.image()
        assert im.size == (400, 300) and cached() == 0, k
    r = check(run(["mine", pdf, "--out", tmp_path / "out", "--allow-any-licence"]), (0,))
    assert "images   4 cut from 4 figures = 4 kept + 0 rejected" in r.stdout


# -- 4. names from remote data never become paths -----------------------------------------------
def test_harvest_names_no_file_from_a_remote_pmcid_and_stops_a_cycling_cursor(tmp_path):
    # slow: three harvest runs (~8 s)
    from tests.support.archive_server import ArchiveStub
    from tests.support.harvest_kit import real_article

    argv = ["harvest", "--email", "x@example.org", "--search-rate", "200", "--archive-rate", "200", "--retries", "0"]
    out = tmp_path / "deep" / "h"
    with ArchiveStub() as stub:
        stub.add(real_article("elife00240.xml", "PMC100", seed=1))
        stub.extra_hits += [{"pmcid": "../../../pwned", "source": "MED", "id": "1"},
                            {"pmcid": "PMC5/../../x", "source": "MED", "id": "2"}]
        r = check(run([*argv, "--out", out, "--search-url", stub.search_url, "--archive-url", stub.archive_url]), (0,))
    assert re.search(r"articles 3 = 1 kept \+ 2 rejected", r.stdout), r.stdout
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert all(w.startswith("deep/h/") for w in written), written  # nothing outside --out
    markers = sorted(p.name for p in (out / ".harvest" / "done").iterdir())
    assert len(markers) == 3 and "PMC100.json" in markers
    assert all(re.fullmatch(r"PMC\d+\.json|hit-[0-9a-f]{24}\.json", m) for m in markers), markers

    class Cycling(ArchiveStub):  # cursor * -> A -> B -> A -> ...: the same pages for ever
        def answer(self, target):
            if not target.startswith("/europepmc/"):
                return super().answer(target)
            cursor = re.search(r"cursorMark=([^&]*)", target)[1]
            nxt = {"%2A": "A", "*": "A", "A": "B", "B": "A"}[cursor]
            self.pages = getattr(self, "pages", 0) + 1
            hit = {"pmcid": f"PMC{900 + self.pages}", "isOpenAccess": "N", "source": "PMC", "id": str(self.pages)}
            return 200, json.dumps({"hitCount": 10_000, "nextCursorMark": nxt,
                                    "resultList": {"result": [hit]}}).encode(), "application/json"

    with Cycling() as stub:
        r = check(run([*argv, "--out", tmp_path / "c", "--search-url", stub.search_url, "--archive-url",
                       stub.archive_url, "--page-size", "1"], timeout=60), (2,))
        assert stub.pages == 3
    assert len(r.errors) == 1 and "Europe PMC search: the cursor 'A' came back after 3 pages" in r.errors[0]

    class Endless(ArchiveStub):  # a new cursor every page, past the hit count it reported
        def answer(self, target):
            if not target.startswith("/europepmc/"):
                return super().answer(target)
            self.pages = getattr(self, "pages", 0) + 1
            body = {"hitCount": 3, "nextCursorMark": f"c{self.pages}",
                    "resultList": {"result": [{"pmcid": "PMC1", "isOpenAccess": "N", "id": str(self.pages)}]}}
            return 200, json.dumps(body).encode(), "application/json"

    with Endless() as stub:
        r = check(run([*argv, "--out", tmp_path / "e", "--search-url", stub.search_url, "--archive-url",
                       stub.archive_url, "--page-size", "1"], timeout=60), (0,))
        assert stub.pages == 3  # 3 hits reported, 1 per page
    assert "search: 3 hits (3 pages requested now)" in r.stdout


# -- 5. parsing by whole terms --------------------------------------------------------------------
PROSE = {  # a generalist's answer -> (labels credited, unknown terms shown)
    "Features: dimple-free surface": ([], ["dimple-free"]),
    "Features: unobtanium_dimple": ([], ["unobtanium_dimple"]),
    "The fracture surface is dominated by equiaxed dimples, with no evidence of fatigue striations or beach marks.":
        (["dimple_equiaxed"], ["no evidence of fatigue striations", "beach marks"]),
    "I see a dimple-free, flat surface with river patterns on cleavage facets; intergranular facets are absent.":
        (["cleavage_facet", "river_pattern"], ["dimple-free", "intergranular facets are absent"]),
    "Absence of striations. The surface shows cleavage-like facets and secondary cracks.":
        (["secondary_crack"], ["Absence of striations", "cleavage-like"]),
    "Neither dimples nor striations are visible, but there are gas pores and lack-of-fusion voids.":
        (["gas_pore", "lack_of_fusion"], ["Neither dimples", "nor striations"]),
    "Striations were not observed. Dimples are present, without tear ridges.":
        (["dimple_equiaxed"], ["Striations were not observed", "without tear ridges"]),
}


def test_fracbench_credits_whole_terms_only_and_shows_denials_as_unknown_terms(tmp_path):
    # slow: one infer run over seven prose answers (~5 s)
    gold, ids, markers = color_gold(tmp_path / "g", len(PROSE))
    texts = list(PROSE)

    def prose(kind, body):
        raw = json.dumps(body)
        return texts[next(i for i, m in enumerate(markers) if m in raw)]

    with OpenAIStub(responder=prose) as stub:
        entry = api_entry(tmp_path, "api", stub.base_url, None)
        check(run(["infer", "--model", entry, "--gold", gold, "--out", tmp_path / "b", "--cache", tmp_path / "c.sqlite"],
                  program="fracbench"), (0,))
    rows = {r["id"]: r for r in read(tmp_path / "b" / "predictions" / "api.jsonl")}
    for k, text in enumerate(texts):
        want_labels, want_unknown = PROSE[text]
        row = rows[ids[k]]
        assert (row["labels"], row["unknown"]) == (want_labels, want_unknown), (text, row)
        assert row["status"] == ("ok" if want_labels else "unparsed")


# -- 6. every numeric option and model-entry field is checked when parsed ------------------------
def test_numeric_options_and_entry_fields_are_one_line_errors_naming_them(tmp_path):
    # slow: sixteen short runs (~25 s)
    manifest, _ = make_manifest(tmp_path / "m", 1)
    gold, _, _ = color_gold(tmp_path / "g", 1)
    base = ["label", "--manifest", manifest, "--out", tmp_path / "l.jsonl"]
    cases = [(base + [flag, value], f"argument {flag}: must be", f"got '{value}'") for flag, value in (
        ("--rpm", "0"), ("--tpm", "0"), ("--timeout", "0"), ("--timeout", "nan"), ("--max-retries", "-1"),
        ("--max-side", "0"), ("--budget-usd", "nan"), ("--concurrency", "0"), ("--backoff-base", "inf"))]
    cases += [(["analyze", "x.png", "--budget-usd", "nan"], "argument --budget-usd: must be a finite number >= 0"),
              (["analyze", "--watch", tmp_path, "--poll", "0"], "argument --poll: must be a finite number > 0"),
              (["serve", "--max-queue", "0"], "argument --max-queue: must be a whole number >= 1"),
              (["serve", "--port", "70000"], "argument --port: must be a whole number >= 0 and <= 65535")]
    for argv, *parts in cases:
        r = check(run(argv, env={"OPENAI_API_KEY": KEY, "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}), (2,))
        assert len(r.errors) == 1 and all(p in r.errors[0] for p in parts), (argv, r.errors)
        assert "(see fracdata " in r.errors[0]
    for value, said in (("0", "timeout_s: Input should be greater than 0"),
                        (".nan", "timeout_s: Input should be a finite number")):
        entry = write(tmp_path / f"e{value}.yaml", api_entry(tmp_path, "api", "http://127.0.0.1:9/v1", None)
                      .read_text().replace("timeout_s: 20", f"timeout_s: {value}"))
        r = check(run(["infer", "--model", entry, "--gold", gold, "--out", tmp_path / "b", "--cache",
                       tmp_path / "c.sqlite"], program="fracbench"), (2,))
        assert len(r.errors) == 1 and f"{entry}: {said}" in r.errors[0], r.errors
    assert not (tmp_path / "l.jsonl").exists()


# -- 7. 16-bit contrast -----------------------------------------------------------------------------
def test_a_16bit_tiff_with_one_hot_pixel_keeps_its_grey_levels_and_a_flat_one_is_a_counted_warning(tmp_path):
    # slow: one build (~6 s)
    from fracdata.images import image_id

    m = tmp_path / "m"
    m.mkdir()
    rng = np.random.default_rng(3)
    hot = (1000 + rng.integers(0, 3000, (120, 160))).astype(np.uint16)  # a 12-bit SEM frame...
    hot[7, 9] = 65535  # ...with one hot pixel
    Image.fromarray(hot).save(m / "hot.tif")
    Image.new("I;16", (160, 120), 700).save(m / "flat.tif")
    rows = [{"id": image_id(m / n), "image": n, "source": {"doi": f"10.1/{n}"}} for n in ("hot.tif", "flat.tif")]
    write(m / "manifest.jsonl", "".join(json.dumps(x) + "\n" for x in rows))
    write(m / "labels.jsonl", "".join(json.dumps({"id": x["id"], "features": ["gas_pore"], "labeler": {"kind": "human"}})
                                      + "\n" for x in rows))
    r = check(run(["build", "--manifest", m / "manifest.jsonl", "--labels", m / "labels.jsonl", "--out", tmp_path / "d",
                   "--workers", "1", "--rotations", ""]), (0,))
    assert "warning: 1 16-bit/float images: every pixel has one value (normalised to black)" in r.stdout
    assert json.loads((tmp_path / "d" / "build.json").read_text())["dynamic_range_warnings"] == {"flat": 1}
    levels = len(np.unique(np.asarray(Image.open(tmp_path / "d" / "images" / f"{rows[0]['id']}.png"))))
    assert levels >= 250, levels  # min..max kept 12 of them


# -- 8. serve answers every request it accepts ---------------------------------------------------
def test_serve_answers_a_burst_beyond_its_queue_with_503_retry_after_and_logs_each_refusal(tmp_path):
    # slow: a server and 30 concurrent uploads against a slow specialist (~15 s)
    from tests.support.analyze_kit import spec_entry, spec_responder
    from tests.support.hostile_images import encode, texture

    data = encode(texture(5, (96, 80)), "PNG")
    with OpenAIStub(responder=spec_responder, latency=0.3) as spec:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), str(ROOT / "benchmarks")]), HF_HUB_OFFLINE="1")
        proc = subprocess.Popen([sys.executable, "-m", "fracdata", "serve", "--port", "0", "--specialist",
                                 spec_entry(tmp_path, spec.base_url), "--generalist", "none", "--max-queue", "4",
                                 "--out", str(tmp_path / "s")], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        try:
            url = next(line.split()[1] for line in proc.stdout if line.startswith("serving "))
            got, lock = [], threading.Lock()

            def one(_):
                body = (b"--b\r\nContent-Disposition: form-data; name=\"image\"; filename=\"x.png\"\r\n"
                        b"Content-Type: image/png\r\n\r\n" + data + b"\r\n--b--\r\n")
                req = urllib.request.Request(url + "analyze", body, {"Content-Type": "multipart/form-data; boundary=b"})
                try:
                    with urllib.request.urlopen(req, timeout=60) as resp:
                        out = (resp.status, None)
                except urllib.error.HTTPError as e:
                    out = (e.code, e.headers.get("Retry-After"))
                except OSError as e:
                    out = (type(e).__name__, None)
                with lock:
                    got.append(out)

            threads = [threading.Thread(target=one, args=(k,)) for k in range(30)]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
        finally:
            proc.terminate()
            err = proc.communicate(timeout=30)[1]
    statuses = sorted({s for s, _ in got}, key=str)
    assert len(got) == 30 and set(statuses) <= {200, 503}, got  # every request answered
    busy = [ra for s, ra in got if s == 503]
    assert busy and all(ra is not None and 1 <= int(ra) <= 120 for ra in busy), got
    logged = [ln for ln in err.splitlines() if ln.startswith("serve: refused POST /analyze from 127.0.0.1:")]
    assert len(logged) == len(busy) and all(" 503 busy: " in ln for ln in logged), err[-2000:]
    assert "Traceback" not in err


# -- 9. messages that tell the truth ---------------------------------------------------------------
def test_label_counts_retries_not_failed_attempts(tmp_path):
    # slow: two label runs (~6 s)
    manifest, _ = make_manifest(tmp_path / "m", 3)
    with OpenAIStub(responder=answer) as stub:
        stub.faults.append(Fault("500", times=None))
        r = check(label("--manifest", manifest, tmp_path / "a.jsonl", stub, "--max-retries", "0"), (1,))
        assert "retried" not in r.stdout and "requests 3" in r.stdout  # three attempts, no retry
        stub.faults.clear()
        stub.faults.append(Fault("500", match="[[img-1]]", times=2))
        r = check(label("--manifest", manifest, tmp_path / "b.jsonl", stub, "--max-retries", "3"), (0,))
        assert "retried server_error 2" in r.stdout and "requests 5" in r.stdout  # 3 images + 2 retries


def test_a_byte_order_mark_is_read_the_same_by_every_reader(tmp_path):
    # slow: label, build and fracbench runs (~10 s)
    bom = b"\xef\xbb\xbf"
    manifest, ids = make_manifest(tmp_path / "m", 2)
    manifest.write_bytes(bom + manifest.read_bytes())
    with OpenAIStub(responder=answer) as stub:
        r = check(label("--manifest", manifest, tmp_path / "l.jsonl", stub), (0,))
    assert ": 2 lines, 2 images to label, 0 rejected" in r.stdout  # line 1 is not lost
    labels = tmp_path / "l.jsonl"
    labels.write_bytes(bom + labels.read_bytes())
    r = check(run(["build", "--manifest", manifest, "--labels", labels, "--out", tmp_path / "d", "--workers", "1",
                   "--rotations", "", "--min-side", "16"]), (0,))  # the labeller's images are 32 x 24
    built = json.loads((tmp_path / "d" / "build.json").read_text())["streams"]
    assert (built["mined"]["read"], built["labels"]["read"]) == (2, 2) and built["mined"]["kept"] == 2
    gold, gids, _ = color_gold(tmp_path / "g", 2)
    gold.write_bytes(bom + gold.read_bytes())
    with OpenAIStub(responder=lambda kind, body: "Features: gas pores") as stub:
        entry = api_entry(tmp_path, "api", stub.base_url, None)
        check(run(["infer", "--model", entry, "--gold", gold, "--out", tmp_path / "b", "--cache", tmp_path / "c.sqlite"],
                  program="fracbench"), (0,))
    assert [x["id"] for x in read(tmp_path / "b" / "predictions" / "api.jsonl")] == gids
    sheet = write(tmp_path / "s.csv", "\ufeffid,human_features\n" + "".join(f"{i},gas_pore\n" for i in ids))
    check(run(["audit", "score", "--sample", sheet, "--labels", labels]), (0,))
