"""`fracdata review` without a server: the labelling view, the consensus rule, kappa, rejects, files.

Exports here are written the way Label Studio writes them (tests/test_review_ls.py checks that
shape against a real server).
"""

from __future__ import annotations

import base64
import csv
import io
import json
import xml.etree.ElementTree as ET

import pytest
from PIL import Image

from fracdata.cli import main
from fracdata.review.config import label_config, read_result
from fracdata.taxonomy import load_taxonomy
from tests.support.buildkit import encode, noise
from tests.support.review_kit import (ADJ, ADJUDICATED, ANN1, ANN2, GOLD, KAPPA, PER_FEATURE, answer_result,
                                      export_task, make_manifest, read_json, read_jsonl, write_labels)

TAX = load_taxonomy()
USERS = {1: ANN1, 2: ANN2, 3: ADJ}
NAMES = [f"--annotator={k}={v}" for k, v in USERS.items()]


def test_label_config_groups_the_whole_taxonomy_with_names_and_hints():
    root = ET.fromstring(label_config(TAX, "gold"))
    controls = root.findall(".//Choices")
    assert [c.get("name") for c in controls] == ["flags", *TAX.groups]
    assert all(c.get("choice") == "multiple" and c.get("toName") == "image" for c in controls)
    choices = [ch for c in controls[1:] for ch in c.findall("Choice")]
    assert [ch.get("value") for ch in choices] == TAX.ids  # 53 ids, taxonomy order, grouped
    f = TAX.by_id["fish_eye"]
    fish = next(ch for ch in choices if ch.get("value") == "fish_eye")
    assert (fish.get("html"), fish.get("hint")) == (f.name, f.visual)
    assert [ch.get("html") for ch in controls[0]] == ["not a fracture surface", "unsure"]
    assert {e.get("value") for e in root.iter() if e.tag in ("Image", "Text")} == {"$image", "$paper", "$caption", "$excerpts"}
    headers = [h.get("value") for h in root.iter("Header")]
    assert [g.capitalize() for g in TAX.groups] == [h for h in headers if h.lower() in TAX.groups]


def test_read_result_is_strict():
    ok, why = read_result(answer_result(["river_pattern", "cleavage_facet", "gas_pore"], TAX), TAX)
    assert (ok.features, ok.not_fracture, ok.unsure, why) == (("cleavage_facet", "river_pattern", "gas_pore"), False, False, "")
    assert read_result([], TAX)[0].features == ()  # submitted with nothing ticked: no feature
    nfs = read_result(answer_result("nfs", TAX), TAX)[0]
    assert (nfs.not_fracture, nfs.usable, nfs.describe()) == (True, False, "not a fracture surface")
    bad = [{"from_name": "ductile", "type": "choices", "value": {"choices": ["banana"]}}]
    assert read_result(bad, TAX) == (None, "'banana' is not a taxonomy v1 id of group 'ductile' "
                                           "(was the labelling view edited in Label Studio?)")
    wrong_group = [{"from_name": "fatigue", "type": "choices", "value": {"choices": ["gas_pore"]}}]
    assert read_result(wrong_group, TAX)[0] is None
    other = [{"from_name": "box", "type": "rectanglelabels", "value": {}}]
    assert read_result(other, TAX)[1] == "control 'box' (rectanglelabels) is not in this review's labelling view"


@pytest.fixture
def gold_dir(tmp_path):
    manifest, ids = make_manifest(tmp_path / "mined", 8)
    out = tmp_path / "gold"
    (tmp_path / "ids.txt").write_text("\n".join(ids[:6]) + "\n")
    assert main(["review", "gold", "--manifest", str(manifest), "--ids", str(tmp_path / "ids.txt"), "--out", str(out)]) == 0
    return out, sorted(ids[:6])


def gold_export(out, ids, extra=()):
    """The gold scenario as a Label Studio JSON export of the review's tasks.json."""
    data = {t["data"]["fracdata_id"]: t["data"] for t in read_json(out / "tasks.json")}
    tasks = []
    for k, (a, b) in enumerate(GOLD):
        anns = [(1, answer_result(a, TAX), {}), (2, answer_result(b, TAX), {})]
        if k in ADJUDICATED:
            anns.append((3, answer_result(ADJUDICATED[k], TAX), {}))
        tasks.append(export_task(k + 1, data[ids[k]], anns))
    return tasks + list(extra)


def test_gold_consensus_kappa_and_listing(gold_dir, tmp_path, capsys):
    out, ids = gold_dir
    (tmp_path / "export.json").write_text(json.dumps(gold_export(out, ids)))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "export.json"), *NAMES,
                 "--adjudicator", ADJ]) == 0
    gold = read_jsonl(out / "gold.jsonl")
    assert [(g["id"], g["features"], g.get("note")) for g in gold] == [
        (ids[0], ["dimple_equiaxed"], None),
        (ids[1], ["cleavage_facet", "river_pattern"], f"adjudicated by {ADJ}"),
        (ids[2], ["striation_ductile", "beach_marks"], None)]
    assert gold[1]["annotators"] == {ANN1: ["cleavage_facet", "river_pattern"], ANN2: ["cleavage_facet"]}
    assert gold[0]["image"] == f"images/{ids[0]}.png" and (out / gold[0]["image"]).is_file()
    assert gold[0]["source"]["doi"].startswith("10.5555/review.")
    listed = read_jsonl(out / "gold.disagreements.jsonl")
    assert [(x["id"], x["reason"], x["differ"]) for x in listed] == [
        (ids[3], "disagreement", ["secondary_crack"]), (ids[4], "not_fractograph", []), (ids[5], "unsure", [])]
    assert listed[2]["annotators"] == {ANN1: "unsure", ANN2: ["gas_pore"]}
    k = read_json(out / "gold.kappa.json")
    pair = k["pairs"][0]
    assert (pair["a"], pair["b"], pair["images"], pair["features"]) == (ANN1, ANN2, 4, 7)
    assert pair["kappa"] == pytest.approx(float(KAPPA)) and k["overall"] == pytest.approx(float(KAPPA))
    assert pair["excluded"] == {"unsure": 1, "not_fracture_surface": 1} and pair["exact_agreement"] == 0.5
    assert {f: r["kappa"] for f, r in pair["per_feature"].items()} == PER_FEATURE
    assert (k["reference_kappa"], k["reference_source"]) == (
        0.89, "the review page's simulated author rebuttal, not the paper (docs/study.md)")
    text = capsys.readouterr().out
    assert (f"Cohen's kappa {ANN1} vs {ANN2}: 0.788 over 4 images x 7 features (1 unsure, 1 not_fracture_surface "
            "excluded); exact feature set agreement 0.500; reference: 0.89 from the review page's simulated author "
            "rebuttal, not the paper (docs/study.md)") in text
    assert "wrote " + str(out / "gold.jsonl") + ": 3 gold images of 6 (2 by agreement, 1 adjudicated)" in text
    assert "read 13 annotations from " in text and ": 13 kept, 0 rejected" in text


def test_gold_without_adjudicator_lists_the_disputed_image(gold_dir, tmp_path):
    out, ids = gold_dir
    (tmp_path / "export.json").write_text(json.dumps(gold_export(out, ids)))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "export.json"), *NAMES]) == 0
    assert [g["id"] for g in read_jsonl(out / "gold.jsonl")] == [ids[0], ids[2]]
    listed = {x["id"]: x for x in read_jsonl(out / "gold.disagreements.jsonl")}
    assert listed[ids[1]]["reason"] == "disagreement" and listed[ids[1]]["differ"] == ["river_pattern"]
    # The adjudicator annotated image 1 but was not named: they count as a third annotator.
    assert listed[ids[1]]["annotators"][ADJ] == ["cleavage_facet", "river_pattern"]


def test_gold_rejects_are_counted_with_reasons(gold_dir, tmp_path, capsys):
    out, ids = gold_dir
    data = {t["data"]["fracdata_id"]: t["data"] for t in read_json(out / "tasks.json")}
    stranger = dict(data[ids[0]], fracdata_id="f" * 64)
    other = dict(data[ids[0]], fracdata_review="0" * 32)
    banana = [{"from_name": "ductile", "to_name": "image", "type": "choices", "value": {"choices": ["banana"]}}]
    extra = [export_task(50, stranger, [(1, answer_result(["gas_pore"], TAX), {})]),        # unknown_id
             export_task(51, other, [(1, answer_result(["gas_pore"], TAX), {})]),           # other_review
             export_task(52, data[ids[5]], [(2, banana, {}),                               # unknown_choice
                                            (1, [], {"was_cancelled": True})]),             # annotation_skipped
             export_task(53, data[ids[0]], [(2, answer_result(["gas_pore"], TAX), {})])]    # ann2 twice on image 0
    (tmp_path / "export.json").write_text(json.dumps(gold_export(out, ids, extra)))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "export.json"), *NAMES,
                 "--adjudicator", ADJ]) == 0
    rejects = read_jsonl(out / "import.rejects.jsonl")
    assert sorted(r["reason"] for r in rejects) == ["annotation_skipped", "duplicate_annotator", "duplicate_annotator",
                                                   "other_review", "unknown_choice", "unknown_id"]
    dup = [r for r in rejects if r["reason"] == "duplicate_annotator"]
    assert {r["id"] for r in dup} == {ids[0]} and f"{ANN2} annotated this image 2 times" in dup[0]["detail"]
    # image 0 now has one usable annotator: too few for agreement
    listed = {x["id"]: x["reason"] for x in read_jsonl(out / "gold.disagreements.jsonl")}
    assert listed[ids[0]] == "too_few_annotators"
    text = capsys.readouterr().out
    # 13 + 5 read; 6 rejected (both of ann2's on image 0); 12 kept
    assert ": 12 kept, 6 rejected (annotation_skipped: 1, duplicate_annotator: 2, other_review: 1, unknown_choice: 1, " \
           "unknown_id: 1; see " in text


def test_export_of_another_project_and_unnamed_users_are_errors(gold_dir, tmp_path, capsys):
    out, ids = gold_dir
    tasks = gold_export(out, ids)
    for t in tasks:
        t["data"]["fracdata_review"] = "0" * 32
    (tmp_path / "other.json").write_text(json.dumps(tasks))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "other.json")]) == 2
    uid = read_json(out / "review.json")["uid"]
    assert capsys.readouterr().err == (f"error: {tmp_path / 'other.json'}: its tasks belong to review {'0' * 32}, not {uid} "
                                       "(the review.json given): this is an export of another project\n")
    (tmp_path / "export.json").write_text(json.dumps(gold_export(out, ids)))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "export.json"), "--annotator", "1=a"]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'export.json'}: annotations by Label Studio user ids 2, 3 have "
                                       "no email in the export: pass --annotator ID=NAME for each (the Organization "
                                       "page lists the ids)\n")
    (tmp_path / "min.json").write_text(json.dumps([{"image": "x", "choice": "y"}]))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "min.json")]) == 2
    assert "not a Label Studio JSON export (a list of tasks with 'data')" in capsys.readouterr().err
    assert main(["review", "import", str(out)]) == 2
    assert "this review was never pushed to Label Studio: pass --export FILE" in capsys.readouterr().err


def test_import_never_replaces_a_file_it_did_not_write(gold_dir, tmp_path, capsys):
    out, ids = gold_dir
    (tmp_path / "export.json").write_text(json.dumps(gold_export(out, ids)))
    args = ["review", "import", str(out), "--export", str(tmp_path / "export.json"), *NAMES]
    assert main(args) == 0 and main(args) == 0  # a rerun replaces its own outputs
    (out / "gold.jsonl").write_text("hand-edited\n")
    assert main(args) == 2
    assert capsys.readouterr().err.endswith("gold.jsonl: exists and was not written by this review's import "
                                            "(pass --out elsewhere, or --force to replace it)\n")
    assert main([*args, "--force"]) == 0


def test_prepare_refuses_bad_images_and_reuse(tmp_path, capsys):
    manifest, ids = make_manifest(tmp_path / "mined", 3)
    (tmp_path / "mined" / "images" / "fig1.png").unlink()
    (tmp_path / "mined" / "images" / "fig2.png").write_bytes(encode(noise(999, size=(160, 120))))  # other pixels
    assert main(["review", "gold", "--manifest", str(manifest), "--out", str(tmp_path / "g")]) == 0
    assert "gold review of 1 images, 2 rejected (id_mismatch: 1, missing_image: 1; see" in capsys.readouterr().out
    assert main(["review", "gold", "--manifest", str(manifest), "--out", str(tmp_path / "g")]) == 2
    assert "already holds a gold review (uid " in capsys.readouterr().err
    tasks = read_json(tmp_path / "g" / "tasks.json")
    assert tasks[0]["data"]["image"].startswith("data:image/png;base64,") and "predictions" not in tasks[0]
    assert main(["review", "gold", "--manifest", str(manifest), "--out", str(tmp_path / "u"), "--image-url", "/files/"]) == 0
    assert read_json(tmp_path / "u" / "tasks.json")[0]["data"]["image"] == f"/files/images/{ids[0]}.png"


def test_audit_sample_is_the_audit_samplers_blind_unless_asked(tmp_path):
    manifest, ids = make_manifest(tmp_path / "mined", 10)
    feats = [["dimple_equiaxed"]] * 6 + [["cleavage_facet", "river_pattern"]] * 3 + [[]]
    labels = write_labels(tmp_path / "gpt.jsonl", ids, feats)
    assert main(["audit", "sample", "--labels", str(labels), "--manifest", str(manifest), "--n", "5",
                 "--out", str(tmp_path / "s.csv")]) == 0
    csv_ids = [r["id"] for r in csv.DictReader(open(tmp_path / "s.csv"))]
    for blind, extra in ((True, []), (False, ["--show-gpt"])):
        out = tmp_path / ("blind" if blind else "shown")
        assert main(["review", "audit", "--labels", str(labels), "--manifest", str(manifest), "--n", "5",
                     "--out", str(out), *extra]) == 0
        tasks = read_json(out / "tasks.json")
        assert [t["data"]["fracdata_id"] for t in tasks] == csv_ids
        assert all(("predictions" in t) is not blind for t in tasks)
    shown = {t["data"]["fracdata_id"]: t for t in read_json(tmp_path / "shown" / "tasks.json")}
    cleav = next(t for i, t in shown.items() if ids.index(i) in (6, 7, 8))
    assert cleav["predictions"] == [{"model_version": "gpt", "result": [
        {"from_name": "cleavage", "to_name": "image", "type": "choices", "value": {"choices": ["cleavage_facet", "river_pattern"]}}]}]
    assert read_json(tmp_path / "blind" / "review.json")["sample"]["strata"] == {"cleavage": [1, 3], "ductile": [3, 6], "none": [1, 1]}


def test_manual_folder_prepare_counts_what_is_not_an_image(tmp_path, capsys):
    from tests.support.buildkit import put

    coll = tmp_path / "rare"
    put(coll / "a.png", encode(noise(1)))
    put(coll / "sub" / "b.png", encode(noise(2)))
    put(coll / "sub" / "copy.png", encode(noise(2)))
    (coll / "notes.txt").write_text("x")
    (coll / "labels.jsonl").write_text("")
    assert main(["review", "manual", "--folder", str(coll), "--out", str(coll / "review")]) == 2
    assert "may not be inside the collection" in capsys.readouterr().err
    put(coll / "tiny.png", encode(noise(3, size=(16, 16))))  # the builder's bounds: too small to show a feature
    put(coll / "scan.tif", encode(noise(4, size=(96, 80), mode="RGB"), "TIFF"))
    assert main(["review", "manual", "--folder", str(coll), "--out", str(tmp_path / "rv")]) == 0
    assert "manual review of 3 images, 3 rejected (duplicate_id: 1, not_an_image: 1, too_small: 1;" in capsys.readouterr().out
    # A browser cannot draw a TIFF: the task shows the normalised PNG (the pixels the labeller and
    # the model see); a plain 8-bit PNG is shown as it is.
    tasks = {t["data"]["fracdata_id"]: t["data"]["image"] for t in read_json(tmp_path / "rv" / "tasks.json")}
    from fracdata.images import image_id, open_normalised  # ids: the pixels' sha256, as every stage names images

    tif = coll / "scan.tif"
    assert tasks[image_id(tif)].startswith("data:image/png;base64,")
    shown = Image.open(io.BytesIO(base64.b64decode(tasks[image_id(tif)].split(",", 1)[1])))
    assert shown.tobytes() == open_normalised(tif).tobytes()
    png = (coll / "a.png").read_bytes()
    assert tasks[image_id(png)] == "data:image/png;base64," + base64.b64encode(png).decode()


def test_malformed_exports_and_servers_are_one_line_errors_or_rejects(gold_dir, tmp_path, capsys, monkeypatch):
    monkeypatch.delenv("LABEL_STUDIO_URL", raising=False)
    monkeypatch.delenv("LABEL_STUDIO_API_KEY", raising=False)
    out, ids = gold_dir
    data = read_json(out / "tasks.json")[0]["data"]
    (tmp_path / "a.json").write_text(json.dumps([{"id": 1, "data": data, "annotations": {"x": 1}}]))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "a.json")]) == 2
    assert capsys.readouterr().err == (f"error: {tmp_path / 'a.json'}: task 1: 'annotations' is not a list of objects "
                                       "(not a Label Studio JSON export)\n")
    odd = [{"from_name": "ductile", "type": "choices", "value": ["dimple_equiaxed"]},
           {"from_name": "ductile", "type": "choices", "value": {"choices": "dimple_equiaxed"}}]
    (tmp_path / "b.json").write_text(json.dumps([export_task(1, data, [(1, [odd[0]], {}), (2, [odd[1]], {}),
                                                                       (3, "no list", {})])]))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "b.json"), *NAMES]) == 0
    assert [r["detail"].split(": ", 1)[1] for r in read_jsonl(out / "import.rejects.jsonl")] == [
        "control 'ductile': value is not an object", "control 'ductile': choices is not a list of strings",
        "result is not a list"]
    (tmp_path / "c.json").write_text("{not json")
    assert main(["review", "import", str(out), "--export", str(tmp_path / "c.json")]) == 2
    assert capsys.readouterr().err.startswith(f"error: {tmp_path / 'c.json'}: not valid JSON (")
    assert main(["review", "push", str(out), "--url", "http://127.0.0.1:9", "--token", "abc"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: cannot reach Label Studio at http://127.0.0.1:9 (ConnectError: ") and err.count("\n") == 1
    assert main(["review", "push", str(out), "--token", "abc"]) == 2
    assert capsys.readouterr().err.startswith("error: no Label Studio URL: pass --url or set LABEL_STUDIO_URL")


def test_audit_keeps_the_first_review_and_skips_unsure(tmp_path, capsys):
    manifest, ids = make_manifest(tmp_path / "mined", 4)
    labels = write_labels(tmp_path / "gpt.jsonl", ids, [["dimple_equiaxed"], ["gas_pore"], ["ig_facet"], []])
    out = tmp_path / "audit"
    assert main(["review", "audit", "--labels", str(labels), "--manifest", str(manifest), "--n", "4", "--out", str(out)]) == 0
    data = {t["data"]["fracdata_id"]: t["data"] for t in read_json(out / "tasks.json")}
    later = {"created_at": "2026-01-02T00:00:00Z", "updated_at": "2026-01-02T00:00:00Z"}
    tasks = [export_task(1, data[ids[0]], [(2, answer_result(["secondary_crack"], TAX), later),    # second
                                           (1, answer_result(["dimple_equiaxed"], TAX), {})]),    # first: kept
             export_task(2, data[ids[1]], [(1, answer_result("unsure", TAX), {})]),
             export_task(3, data[ids[2]], [(1, answer_result("nfs", TAX), {})])]
    (tmp_path / "e.json").write_text(json.dumps(tasks))
    assert main(["review", "import", str(out), "--export", str(tmp_path / "e.json"), *NAMES]) == 0
    s = read_json(out / "audit_score.json")
    # image 0 confirmed; image 2 "not a fracture surface": GPT's ig_facet unconfirmed; 1 unsure, 3 not reviewed
    assert (s["images"], s["gpt_features"], s["confirmed"], s["skipped"], s["rows"]) == (
        2, 2, 1, {"unsure": 1, "not_reviewed": 1}, 4)
    rejects = read_jsonl(out / "import.rejects.jsonl")
    assert [(r["reason"], r["id"]) for r in rejects] == [("extra_review", ids[0]), ("unsure", ids[1])]
    assert f"by {ANN2}: the image was already reviewed by {ANN1} (annotation 101), which is kept" in rejects[0]["detail"]
    human = read_jsonl(out / "human_labels.jsonl")
    assert [(h["id"], h["features"], h["labeler"]["annotator"], h.get("image_type")) for h in human] == sorted([
        (ids[0], ["dimple_equiaxed"], ANN1, None), (ids[2], [], ANN1, "not a fracture surface")])  # sample order: by id
    assert "read 4 annotations from " in capsys.readouterr().out
