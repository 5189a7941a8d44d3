"""Hostile images through every stage that opens one (issue 17): build, label, fracbench infer,
analyze (and --watch), serve, mine, review (gold and manual). The corpus is made here (tests/support/hostile_images.py):
damaged headers for every allowed format, truncations, zero bytes, bombs and huge sizes by
header, odd modes, multi-frame files, EXIF garbage, text named .png, a GIF and an ICO, a FIFO, a
folder named .png, symlinks (a loop, dangling, outside the tree, inside it). Each CLI runs as a
user runs it (tests/support/hostile.py: exit 0/1/2, no traceback, one-line errors); where the
stage counts, kept + rejected = read, and every hostile file gets the reason the gate gives it.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from fracdata.images import ImageError, image_id
from tests.support.analyze_kit import spec_entry, spec_responder
from tests.support.hostile import check, run
from tests.support.hostile_images import BROKEN, GOOD, SPECIAL, expected, mutations, write_corpus
from tests.support.jats_kit import LICENCE_CC_BY, article
from tests.support.openai_server import OpenAIStub

LOOP = "loop.png"  # a symlink loop: label and fracbench resolve paths themselves, before the gate


def record_id(path: Path) -> str:
    """What a manifest would say: the pixel id, else (no pixels) the sha256 of the bytes or name."""
    try:
        return image_id(path)
    except ImageError:
        try:
            return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else hashlib.sha256(path.name.encode()).hexdigest()
        except OSError:
            return hashlib.sha256(path.name.encode()).hexdigest()


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()] if path.exists() else []


@pytest.fixture
def files(tmp_path) -> dict[str, Path]:
    return write_corpus(tmp_path / "imgs")  # per test: a FIFO cannot be copied


@pytest.fixture(scope="module")
def stub():
    with OpenAIStub(responder=spec_responder) as s:
        yield s


def manifest(files, names) -> tuple[Path, dict[int, str]]:
    """imgs/manifest.jsonl naming `names` (beside them: imgs-outside/ is outside its folder)."""
    folder = files["good.png"].parent
    rows, by_line = [], {}
    for k, name in enumerate(names, 1):
        rows.append({"id": record_id(files[name]), "image": name,
                     "source": {"doi": f"10.1/{name}", "licence": "CC BY 4.0"}, "caption": f"Fig. {k}. SEM fracture surface."})
        by_line[k] = name
    (folder / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return folder / "manifest.jsonl", by_line


def stage_expect(stage: str, name: str) -> set[str]:
    """The reasons `stage` may give `name` (empty: kept)."""
    special = {"build": {"outside.png": {"symlink_outside_tree"}, LOOP: {"missing_image"}},
               "analyze": {"outside.png": set(), LOOP: {"unreadable_image"}},
               "review": {"outside.png": {"symlink_outside_tree"}, LOOP: {"missing_image"}}}
    if name in SPECIAL:
        return special[stage].get(name, set() if name == "inside_link.png" else {"missing_image"})
    return expected(name)


def test_build_keeps_the_good_images_and_counts_every_hostile_one(files, tmp_path):
    """Acceptance: a damaged-header BMP among good images is a counted reject; the rest build."""
    names = sorted(set(files))
    man, by_line = manifest(files, names)
    labels = tmp_path / "labels.jsonl"
    labels.write_text("".join(json.dumps({"id": json.loads(x)["id"], "features": ["dimples"], "labeler": {"kind": "gpt"}})
                              + "\n" for x in man.read_text().splitlines()))
    r = check(run(["build", "--manifest", man, "--labels", labels, "--out", tmp_path / "ds", "--workers", "2"]), (0,))
    rejects = {x["line"]: x for x in lines(tmp_path / "ds" / "rejects.jsonl") if x["file"] == str(man)}
    for line, name in by_line.items():
        want = stage_expect("build", name)
        got = rejects[line]["reason"] if line in rejects else None
        assert (got in want) if want else got is None, f"{name}: {got}, expected {want or 'kept'}"
    assert rejects[names.index("bmp_bad_header_type.bmp") + 1]["reason"] == "decode_error"
    s = json.loads((tmp_path / "ds" / "build.json").read_text())["streams"]["mined"]
    assert s["read"] == len(names) == s["kept"] + sum(s["rejected"].values())
    assert s["kept"] == len(GOOD) + 1  # + inside_link.png
    assert "decode_error" in r.stdout


def test_build_manual_folder_of_hostile_files_counts_each_one(files, tmp_path):
    from tests.support.hostile_images import encode, texture

    manual = files["good.png"].parent
    (manual / "linkdir").symlink_to(manual / "sub")
    good = [p for n, p in files.items() if not expected(n) and n not in SPECIAL] + [manual / "sub" / "target.png"]
    (manual / "labels.jsonl").write_text("".join(json.dumps({"id": image_id(p), "features": ["dimples"], "labeler": {
        "kind": "human"}}) + "\n" for p in good))
    mined = tmp_path / "mined"
    (mined / "imgs").mkdir(parents=True)
    rows = []
    for k in range(8):
        (mined / "imgs" / f"m{k}.png").write_bytes(encode(texture(200 + k), "PNG"))
        rows.append({"id": image_id(mined / "imgs" / f"m{k}.png"), "image": f"imgs/m{k}.png", "source": {"doi": f"10.2/{k}"}})
    (mined / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (mined / "labels.jsonl").write_text("".join(json.dumps({"id": r["id"], "features": ["striations"], "labeler": {"kind": "gpt"}})
                                                + "\n" for r in rows))
    check(run(["build", "--manifest", mined / "manifest.jsonl", "--labels", mined / "labels.jsonl", "--manual", manual,
               "--out", tmp_path / "ds", "--workers", "2"]), (0,))
    s = json.loads((tmp_path / "ds" / "build.json").read_text())["streams"]["manual"]
    entries = len(files) - 1 + 2  # a FIFO, loop, ... each counted; folder.png is a folder; + sub/target.png, linkdir
    assert s["read"] == entries == s["kept"] + sum(s["rejected"].values())
    by_file = {Path(x["file"]).name: x["reason"] for x in lines(tmp_path / "ds" / "rejects.jsonl") if x["file"].startswith(str(manual))}
    for name in files:
        want = {"fifo.png": {"missing_image"}, LOOP: {"missing_image"}, "dangling.png": {"missing_image"},
                "outside.png": {"symlink_outside_tree"}}.get(name, expected(name))
        if name in ("folder.png", "inside_link.png"):
            continue
        assert (by_file.get(name) in want) if want else name not in by_file, f"{name}: {by_file.get(name)}"
    assert by_file["linkdir"] == "symlinked_folder"
    assert [by_file.get("inside_link.png"), by_file.get("target.png")].count("duplicate_image") == 1
    assert s["kept"] == len(GOOD) + 1


def decodes(path: Path) -> bool:
    """open_normalised (the gate without shape rules: label, fracbench, mine) reads it."""
    try:
        image_id(path)
        return True
    except ImageError:
        return False


def test_label_counts_every_hostile_image_and_pays_for_none_of_them(files, tmp_path):
    names = sorted(files)
    man, _ = manifest(files, names)
    with OpenAIStub() as stub:  # answers a minimal instance of the label schema
        env = {"OPENAI_API_KEY": "sk-test-hostile", "OPENAI_BASE_URL": stub.base_url}
        r = check(run(["label", "--manifest", man, "--out", tmp_path / "labels.jsonl", "--backoff-base", "0.02"], env=env), (1,))
        paid = stub.counts["responses"]
    labels, failures = lines(tmp_path / "labels.jsonl"), lines(tmp_path / "labels.failures.jsonl")
    rejects = lines(tmp_path / "labels.rejects.jsonl")
    assert len(labels) + len(failures) + len(rejects) == len(names), r.stdout
    assert len(labels) == sum(decodes(files[n]) for n in names) == paid  # nothing sent for an image it cannot read
    assert {f["reason"] for f in failures} == {"unreadable_image"}
    assert sorted(Path(x["detail"].split(":")[0].strip("'")).name for x in rejects) == ["dangling.png", "fifo.png",
                                                                                      "folder.png", LOOP]
    assert {x["reason"] for x in rejects} == {"missing_image"}


GOLD_CASES = ["bmp_bad_header_type.bmp", "truncated_good.png", "webp_bad_chunk.webp", "text.png", "empty.png",
              "bomb_png_100k.png", "huge_png_60mpx.png", "tiff_two_samples.tif", "fifo.png", "folder.png", "dangling.png",
              LOOP]


@pytest.mark.slow
def test_fracbench_infer_refuses_a_hostile_gold_image_in_one_line(files, tmp_path, stub):
    """A gold image that cannot be read is an error naming it (the benchmark must not shrink silently)."""
    entry = spec_entry(tmp_path, stub.base_url)
    good = ["good.png", "good.jpg", "good.tif", "good.bmp", "good.webp"]

    def gold(names, where):
        where.mkdir()
        (where / "g.jsonl").write_text("".join(json.dumps({"id": record_id(files[n]), "image": str(files[n]),
                                                           "features": ["dimples"]}) + "\n" for n in names))
        return where / "g.jsonl"

    ok = check(run(["infer", "--gold", gold(good, tmp_path / "ok"), "--model", entry, "--out", tmp_path / "bench",
                    "--cache", tmp_path / "c.sqlite"], program="fracbench"), (0,))
    assert len(lines(tmp_path / "bench" / "predictions" / "spec.jsonl")) == len(good), ok.stdout
    for k, name in enumerate(GOLD_CASES):
        r = check(run(["infer", "--gold", gold(good + [name], tmp_path / f"g{k}"), "--model", entry, "--out",
                       tmp_path / f"b{k}", "--cache", tmp_path / "c.sqlite"], program="fracbench"), (2,))
        assert f"{tmp_path / f'g{k}' / 'g.jsonl'}:6: image " in r.errors[0] and name in r.errors[0], r.errors


def analyze_args(stub, tmp_path, *extra):
    return ["--specialist", spec_entry(tmp_path, stub.base_url), "--generalist", "none", *extra]


def test_analyze_rejects_each_hostile_image_with_its_reason(files, tmp_path, stub):
    names = sorted(files)
    r = check(run(["analyze", *[files[n] for n in names], "--out", tmp_path / "out", *analyze_args(stub, tmp_path)]), (1,))
    rejects = {Path(x["file"]).name: x for x in lines(tmp_path / "out" / "rejects.jsonl")}
    analysed = {json.loads(p.read_text())["image"] for p in (tmp_path / "out").glob("*.json")}
    assert len(analysed) + len(rejects) == len(names), r.stdout
    for name in names:
        want = stage_expect("analyze", name)
        assert (rejects[name]["reason"] in want) if want else str(files[name]) in analysed, (name, rejects.get(name))
    assert rejects["bmp_bad_header_type.bmp"]["reason"] == "decode_error"
    assert all(json.loads(p.read_text())["flags"] == [] for p in (tmp_path / "out").glob("*.json"))  # --generalist none


def test_watch_survives_hostile_images_across_restarts(files, tmp_path, stub):
    drop = files["good.png"].parent
    argv = ["analyze", "--watch", drop, "--once", "--settle", "0", "--poll", "0.05", "--out", tmp_path / "out",
            *analyze_args(stub, tmp_path)]
    first = check(run(argv), (1,))
    log, rej = lines(tmp_path / "out" / "analyses.jsonl"), lines(tmp_path / "out" / "analyses.rejects.jsonl")
    from fracdata.analyze.watch import SUFFIXES

    shown = [n for n in files if Path(n).suffix in SUFFIXES]  # .gif, .ico: listed once as ignored
    regular = [n for n in shown if n not in ("fifo.png", "folder.png", "dangling.png", LOOP)]
    assert len(log) + len(rej) == len(regular), first.stdout
    assert {x["file"]: x["reason"] for x in rej}[str(drop / "bmp_bad_header_type.bmp")] == "decode_error"
    second = check(run(argv), (0,))  # a restart: nothing analysed or rejected again, nothing fatal
    ignored = len(files) - len(regular)
    assert f"analysed 0, rejected 0, already done {len(regular)}, ignored {ignored}" in second.stdout, second.stdout
    assert len(lines(tmp_path / "out" / "analyses.rejects.jsonl")) == len(rej)


@pytest.fixture(scope="module")
def client(stub, tmp_path_factory):
    import argparse

    from starlette.testclient import TestClient

    from fracdata.analyze.options import build_analyzer
    from fracdata.serve import add_arguments
    from fracdata.serve.app import create_app

    p = argparse.ArgumentParser()
    add_arguments(p)
    tmp = tmp_path_factory.mktemp("serve")
    args = p.parse_args(["--specialist", spec_entry(tmp, stub.base_url), "--generalist", "none"])
    with TestClient(create_app(build_analyzer(args, log=lambda m: None), 4_000_000, "FRACDATA_TEST_NO_TOKEN")) as c:
        yield c


def post(client, name: str, data: bytes):
    return client.post("/analyze", files={"image": (name, data, "application/octet-stream")})


def test_serve_answers_every_hostile_image_with_a_4xx_and_its_reason(client, files):
    """Acceptance: the damaged-header BMP is a 415, as every damaged file; none is a 5xx."""
    from fracdata.serve.app import SNIFF_STATUS

    for name, path in files.items():
        if name in SPECIAL:
            continue
        r = post(client, name, path.read_bytes())
        want = expected(name)
        if not want:
            assert (r.status_code, r.json()["image"]) == (200, name), r.text
            continue
        reason = r.json()["detail"].split(": ")[1]
        assert reason in want and r.status_code == SNIFF_STATUS.get(reason, 415), (name, r.status_code, r.text)
    r = post(client, "x.bmp", files["bmp_bad_header_type.bmp"].read_bytes())
    assert (r.status_code, r.json()["detail"]) == (415, "x.bmp: decode_error: damaged header: OSError: Truncated File Read")


def test_serve_fuzz_300_seeded_mutations_never_a_5xx(client):
    statuses = {}
    for name, data in mutations(300, seed=17):
        statuses[name] = post(client, name, data).status_code
    assert max(statuses.values()) < 500, {k: v for k, v in statuses.items() if v >= 500}
    codes = sorted(set(statuses.values()))
    assert 200 in codes and 415 in codes, codes  # the fuzz reached both the analysis and the gate's rejects


def test_mine_counts_every_hostile_graphic(files, tmp_path):
    """JATS figures whose graphics are the corpus: each one mined or rejected with its reason."""
    names = sorted(files)
    folder = files["good.png"].parent
    figs = "".join(f'<fig id="f{k}"><label>Fig. {k}</label><caption><p>SEM fractograph of the fatigue fracture '
                   f'surface showing striations and dimples.</p></caption><graphic xlink:href="{n}"/></fig>'
                   for k, n in enumerate(names, 1))
    (folder / "article.nxml").write_text(article(LICENCE_CC_BY, figs, "<p>Results.</p>"))
    r = check(run(["mine", folder / "article.nxml", "--out", tmp_path / "mined", "--no-panels"]), (0,))
    rejects = {int(x["detail"].split(":")[0].removeprefix("Fig. ")): x["reason"] for x in lines(tmp_path / "mined" / "rejects.jsonl")}
    kept = len(lines(tmp_path / "mined" / "manifest.jsonl"))
    assert f"figures  {len(names)} found = " in r.stdout and kept + len(rejects) == len(names), r.stdout
    for k, name in enumerate(names, 1):
        if name in SPECIAL:  # not a file beside the article (a FIFO, a loop, outside it): missing
            want = set() if name == "inside_link.png" else {"missing_graphic"}
        elif name in ("tiny.png", "sliver.png"):
            want = {"too_small"}  # the miner fits the long side first: the sliver is 1024 x 36
        elif decodes(files[name]):
            want = set()  # the miner reads any still format and the first frame (the builder decides)
        else:
            want = expected(name) | BROKEN
        assert (rejects.get(k) in want) if want else k not in rejects, (name, rejects.get(k))


def test_review_gold_counts_every_hostile_image_by_the_builders_rules(files, tmp_path):
    """`fracdata review gold` resolves and checks images as the builder does: the same reasons."""
    names = sorted(files)
    man, by_line = manifest(files, names)
    r = check(run(["review", "gold", "--manifest", man, "--out", tmp_path / "rv"]), (0,))
    tasks = json.loads((tmp_path / "rv" / "tasks.json").read_text())
    rejects = {x["line"]: x["reason"] for x in lines(tmp_path / "rv" / "prepare.rejects.jsonl")}
    assert len(tasks) + len(rejects) == len(names), r.stdout  # kept + rejected = read
    for line, name in by_line.items():
        want = stage_expect("review", name)
        assert (rejects.get(line) in want) if want else line not in rejects, (name, rejects.get(line))
    assert len(tasks) == len(GOOD) + 1 and f"gold review of {len(tasks)} images, {len(rejects)} rejected" in r.stdout


def test_review_manual_counts_every_entry_of_a_hostile_folder(files, tmp_path):
    """`fracdata review manual` over the corpus folder: every file it lists (a FIFO, a symlink loop,
    a dangling link included) is a task or a reject with the gate's reason; nothing blocks."""
    folder = files["good.png"].parent
    r = check(run(["review", "manual", "--folder", folder, "--out", tmp_path / "rv"]), (0,))
    tasks = json.loads((tmp_path / "rv" / "tasks.json").read_text())
    rejects = {Path(x["file"]).name: x for x in lines(tmp_path / "rv" / "prepare.rejects.jsonl")}
    listed = [n for n in files if n != "folder.png"] + ["target.png"]  # folder.png is a folder (empty); sub/target.png
    assert len(tasks) + len(rejects) == len(listed), r.stdout  # kept + rejected = read
    for name in listed:
        want = {"fifo.png": {"missing_image"}, LOOP: {"unreadable_image"}, "dangling.png": {"missing_image"}}.get(
            name, set() if name in SPECIAL or name == "target.png" else expected(name))
        if name in ("inside_link.png", "target.png"):  # the same pixels twice: one of them a duplicate
            continue
        assert (rejects[name]["reason"] in want) if want else name not in rejects, (name, rejects.get(name))
    assert [rejects.get(n, {}).get("reason") for n in ("inside_link.png", "target.png")].count("duplicate_id") == 1
    assert len(tasks) == len(GOOD) + 2  # + outside.png (a review follows a link; the build refuses it) + target.png
    assert rejects["bmp_bad_header_type.bmp"]["id"] == hashlib.sha256(files["bmp_bad_header_type.bmp"].read_bytes()).hexdigest()
