"""`fracdata review` against a real Label Studio server (its own virtualenv, a temporary data dir).

One server per module. Annotators sign up through the invite link and submit annotations with
their browser session, as the web UI does; fracdata talks to the server with the admin's
personal access token (the JWT kind recent versions issue by default).
"""

from __future__ import annotations

import csv
import json
import os

import pytest

from fracdata.cli import main
from fracdata.images import image_id
from fracdata.taxonomy import load_taxonomy
from tests.support import label_studio as ls
from tests.support.buildkit import encode, noise, put
from tests.support.review_kit import (ADJ, ADJUDICATED, ANN1, ANN2, GOLD, KAPPA, PER_FEATURE, answer_result,
                                      make_manifest, read_json, read_jsonl, write_labels)

TAX = load_taxonomy()

pytestmark = pytest.mark.slow  # a real Label Studio server: ~1 min (its virtualenv first: minutes)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with ls.label_studio(tmp_path_factory.mktemp("label-studio")) as srv:
        admin = ls.admin(srv)
        invite = admin.get("/api/invite").json()["invite_url"]
        people = {email: ls.signup(srv.url, email, f"pw-{email}-123", invite) for email in (ANN1, ANN2, ADJ)}
        ids = {email: s.get("/api/current-user/whoami").json()["id"] for email, s in people.items()}
        yield {"srv": srv, "admin": admin, "people": people, "user_ids": ids, "pat": ls.personal_access_token(srv)}


@pytest.fixture
def env(server, monkeypatch):
    monkeypatch.setenv("LABEL_STUDIO_URL", server["srv"].url)
    monkeypatch.setenv("LABEL_STUDIO_API_KEY", server["pat"])


def _label_stream(session, project, decide) -> int:
    """Work through the labelling stream like an annotator: next task, look at it, submit; return the count."""
    done = 0
    while (task := ls.next_task(session, project)) is not None:
        ls.annotate(session, task["id"], decide(task), project)
        done += 1
    return done


def _task_of(session, project, image_id) -> int:
    tasks = session.get(f"/api/projects/{project}/tasks/", params={"page_size": 100}).json()
    tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    return next(t["id"] for t in tasks if t["data"]["fracdata_id"] == image_id)


def _annotate_gold(server, project, ids):
    index = {i: k for k, i in enumerate(ids)}
    people = server["people"]
    assert _label_stream(people[ANN1], project, lambda t: answer_result(GOLD[index[t["data"]["fracdata_id"]]][0], TAX)) == 6
    assert _label_stream(people[ANN2], project, lambda t: answer_result(GOLD[index[t["data"]["fracdata_id"]]][1], TAX)) == 6
    for k, feats in ADJUDICATED.items():  # the adjudicator opens the disputed task after the discussion
        ls.annotate(people[ADJ], _task_of(people[ADJ], project, ids[k]), answer_result(feats, TAX), project)


@pytest.fixture(scope="module")
def gold_api(server, tmp_path_factory):
    """The gold review through the API: prepare, push (PAT on the command line), annotate, import (env)."""
    tmp = tmp_path_factory.mktemp("gold")
    manifest, all_ids = make_manifest(tmp / "mined", 8)
    (tmp / "ids.txt").write_text("\n".join(all_ids[2:8]))
    out = tmp / "review"
    assert main(["review", "gold", "--manifest", str(manifest), "--ids", str(tmp / "ids.txt"), "--out", str(out),
                 "--push", "--url", server["srv"].url, "--token", server["pat"]]) == 0
    review = read_json(out / "review.json")
    project = review["server"]["project"]
    ids = sorted(all_ids[2:8])
    _annotate_gold(server, project, ids)
    env = {"LABEL_STUDIO_URL": server["srv"].url, "LABEL_STUDIO_API_KEY": server["pat"]}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        assert main(["review", "import", str(out), "--adjudicator", ADJ]) == 0
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return {"out": out, "ids": ids, "project": project, "manifest": manifest}


def test_gold_through_the_api(server, gold_api):
    out, ids, project = gold_api["out"], gold_api["ids"], gold_api["project"]
    p = server["admin"].get(f"/api/projects/{project}/").json()
    assert (p["maximum_annotations"], p["task_number"]) == (2, 6)
    tasks = server["admin"].get(f"/api/projects/{project}/tasks/", params={"page_size": 100}).json()
    tasks = tasks["tasks"] if isinstance(tasks, dict) else tasks
    for t in tasks:  # each uploaded image is served back with the pixels its id names
        assert t["data"]["image"].startswith("/data/upload/")
        body = server["admin"].get(t["data"]["image"]).content
        assert image_id(body) == t["data"]["fracdata_id"]
    gold = read_jsonl(out / "gold.jsonl")
    assert [(g["id"], g["features"], g.get("note")) for g in gold] == [
        (ids[0], ["dimple_equiaxed"], None),
        (ids[1], ["cleavage_facet", "river_pattern"], f"adjudicated by {ADJ}"),
        (ids[2], ["striation_ductile", "beach_marks"], None)]
    assert [g["annotators"] for g in gold] == [
        {ANN1: ["dimple_equiaxed"], ANN2: ["dimple_equiaxed"]},
        {ANN1: ["cleavage_facet", "river_pattern"], ANN2: ["cleavage_facet"]},
        {ANN1: ["striation_ductile", "beach_marks"], ANN2: ["striation_ductile", "beach_marks"]}]
    assert all((out / g["image"]).is_file() for g in gold)
    listed = read_jsonl(out / "gold.disagreements.jsonl")
    assert [(x["id"], x["reason"], x["differ"], x["annotators"]) for x in listed] == [
        (ids[3], "disagreement", ["secondary_crack"], {ANN1: ["ig_facet"], ANN2: ["ig_facet", "secondary_crack"]}),
        (ids[4], "not_fractograph", [], {ANN1: "not a fracture surface", ANN2: "not a fracture surface"}),
        (ids[5], "unsure", [], {ANN1: "unsure", ANN2: ["gas_pore"]})]
    k = read_json(out / "gold.kappa.json")
    assert k["pairs"][0]["kappa"] == pytest.approx(float(KAPPA), abs=1e-12)  # 26/33 by hand (review_kit)
    assert {f: r["kappa"] for f, r in k["pairs"][0]["per_feature"].items()} == PER_FEATURE
    assert read_jsonl(out / "import.rejects.jsonl") == []


def test_file_route_round_trips_through_the_same_server(server, gold_api, tmp_path, capsys):
    out, ids = gold_api["out"], gold_api["ids"]
    admin = server["admin"]
    # What a team does in the UI: create a project, paste label_config.xml, import tasks.json.
    project = admin.post("/api/projects/", json={"title": "gold review (files)", "maximum_annotations": 2,
                                                 "label_config": (out / "label_config.xml").read_text()}).json()["id"]
    with open(out / "tasks.json", "rb") as f:
        r = admin.post(f"/api/projects/{project}/import", files={"file": ("tasks.json", f, "application/json")})
    assert r.status_code == 201 and r.json()["task_count"] == 6, r.text
    _annotate_gold(server, project, ids)
    export = admin.get(f"/api/projects/{project}/export", params={"exportType": "JSON"})
    assert export.status_code == 200
    (tmp_path / "export.json").write_bytes(export.content)
    assert {type(a["completed_by"]) for t in export.json() for a in t["annotations"]} == {int}
    args = ["review", "import", str(out), "--export", str(tmp_path / "export.json"), "--adjudicator", ADJ,
            "--out", str(out / "gold_files.jsonl")]
    assert main(args) == 2  # the export names users by id only
    assert "have no email in the export: pass --annotator ID=NAME" in capsys.readouterr().err
    names = [f"--annotator={uid}={email}" for email, uid in server["user_ids"].items()]
    assert main([*args, *names]) == 0
    for a, b in (("gold.jsonl", "gold_files.jsonl"), ("gold.disagreements.jsonl", "gold_files.disagreements.jsonl"),
                 ("gold.kappa.json", "gold_files.kappa.json")):
        assert (out / a).read_text() == (out / b).read_text(), a


def test_audit_reproduces_fracdata_audit_score(server, env, tmp_path, capsys):
    manifest, ids = make_manifest(tmp_path / "mined", 10, seed=3)
    feats = [["dimple_equiaxed"]] * 6 + [["cleavage_facet", "river_pattern"]] * 3 + [[]]
    labels = write_labels(tmp_path / "gpt.jsonl", ids, feats)
    out = tmp_path / "audit"
    assert main(["review", "audit", "--labels", str(labels), "--manifest", str(manifest), "--n", "5", "--seed", "1",
                 "--show-gpt", "--out", str(out), "--push"]) == 0
    project = read_json(out / "review.json")["server"]["project"]
    p = server["admin"].get(f"/api/projects/{project}/").json()
    assert (p["show_collab_predictions"], p["model_version"]) == (True, "gpt")
    # The reviewer's decisions, by image: the GPT answer confirmed, changed, emptied, or not a fractograph.
    sample = [t["data"]["fracdata_id"] for t in read_json(out / "tasks.json")]
    plan = dict(zip(sample, [["dimple_equiaxed"], ["dimple_equiaxed", "secondary_crack"], [], "nfs",
                             ["cleavage_facet"]]))
    seen_predictions = []

    def decide(task):  # the task the stream hands out carries the GPT answer the view pre-fills
        seen_predictions.append([c for r in task["predictions"][0]["result"] for c in r["value"]["choices"]])
        return answer_result(plan[task["data"]["fracdata_id"]], TAX)

    assert _label_stream(server["people"][ANN1], project, decide) == 5
    gpt_of = dict(zip(ids, feats))
    assert sorted(seen_predictions) == sorted(gpt_of[i] for i in sample)
    assert main(["review", "import", str(out)]) == 0
    printed = capsys.readouterr().out
    # The same decisions typed into the CSV of `fracdata audit sample`, scored by `fracdata audit score`.
    assert main(["audit", "sample", "--labels", str(labels), "--manifest", str(manifest), "--n", "5", "--seed", "1",
                 "--out", str(tmp_path / "s.csv")]) == 0
    rows = list(csv.DictReader(open(tmp_path / "s.csv")))
    assert [r["id"] for r in rows] == sample
    for r in rows:
        d = plan[r["id"]]
        r["human_features"] = "none" if d in ("nfs", []) else "; ".join(d)
    with open(tmp_path / "filled.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    assert main(["audit", "score", "--sample", str(tmp_path / "filled.csv"), "--labels", str(labels),
                 "--out", str(tmp_path / "score.json")]) == 0
    assert read_json(out / "audit_score.json") == read_json(tmp_path / "score.json")
    table = printed[printed.index("GPT features confirmed"):printed.index("wrote ")]
    assert table in capsys.readouterr().out  # the same printout too
    human = read_jsonl(out / "human_labels.jsonl")
    assert [(h["id"], h["features"], h["labeler"]["kind"], h["labeler"]["annotator"], h.get("image_type")) for h in human] == [
        (i, [] if plan[i] == "nfs" else TAX.sort(plan[i]), "human", ANN1, "not a fracture surface" if plan[i] == "nfs" else None)
        for i in sample]
    # ... and the builder lets them override the GPT labels of the same images.
    from fracdata.dataset.inputs import Ledger, read_labels

    ledger = Ledger()
    chosen = read_labels([(labels, False), (out / "human_labels.jsonl", False)], TAX, ledger)
    assert {i for i, lab in chosen.items() if lab.kind == "human"} == set(sample)
    assert ledger.rejected("labels") == {"overridden_by_human": 5}


def test_manual_collection_labels(server, env, tmp_path, capsys):
    coll = tmp_path / "rare"
    shas = [put(coll / "images" / f"r{k}.png", encode(noise(40 + k, size=(128, 96)))) for k in range(3)]
    out = tmp_path / "manual-review"
    assert main(["review", "manual", "--folder", str(coll), "--out", str(out), "--push"]) == 0
    project = read_json(out / "review.json")["server"]["project"]
    plan = {shas[0]: ["fish_eye"], shas[1]: ["unmelted_powder", "lack_of_fusion"], shas[2]: "nfs"}
    assert _label_stream(server["people"][ANN2], project, lambda t: answer_result(plan[t["data"]["fracdata_id"]], TAX)) == 3
    assert main(["review", "import", str(out)]) == 0
    labels = read_jsonl(coll / "labels.jsonl")
    assert [(x["id"], x["features"], x["labeler"]) for x in labels] == [
        (shas[0], ["fish_eye"], {"kind": "human", "annotator": ANN2, "taxonomy_version": 1, "created": labels[0]["labeler"]["created"]}),
        (shas[1], ["lack_of_fusion", "unmelted_powder"], {**labels[0]["labeler"], "created": labels[1]["labeler"]["created"]})]
    assert [(r["id"], r["reason"]) for r in read_jsonl(out / "import.rejects.jsonl")] == [(shas[2], "not_fractograph")]
    assert "read 3 annotations from " in capsys.readouterr().out
    # The builder reads the collection as it reads any manual folder: every label attached, none rejected.
    from fracdata.dataset import decode
    from fracdata.dataset.inputs import Ledger, read_labels, read_manual_files
    from fracdata.images import Bounds

    ledger = Ledger()
    items = read_manual_files(coll, ledger, {}, lambda paths: decode.run_pool(
        [decode.Job(str(p), str(p), None) for p in paths], 1, Bounds(), "manual ids"))
    chosen = read_labels([(coll / "labels.jsonl", True)], TAX, ledger)
    assert set(items) == set(shas) and set(chosen) == set(shas[:2]) and ledger.rejects == []


def test_bad_annotations_are_counted_rejects(server, env, gold_api, tmp_path, capsys):
    out = tmp_path / "review"
    ids_file = tmp_path / "ids.txt"
    ids_file.write_text("\n".join(gold_api["ids"]))
    assert main(["review", "gold", "--manifest", str(gold_api["manifest"]), "--ids", str(ids_file), "--out", str(out),
                 "--push"]) == 0
    review = read_json(out / "review.json")
    project = review["server"]["project"]
    people, admin = server["people"], server["admin"]
    ids = gold_api["ids"]
    # an extra task in the project whose image is not in the review (someone imported other data)
    stray = dict(read_json(out / "tasks.json")[0]["data"], fracdata_id="e" * 64)
    assert admin.post(f"/api/projects/{project}/import", json=[{"data": stray}]).status_code == 201
    t0, t1 = _task_of(admin, project, ids[0]), _task_of(admin, project, ids[1])
    ls.annotate(people[ANN1], t0, answer_result(["dimple_equiaxed"], TAX), project)
    ls.annotate(people[ANN1], t0, answer_result(["dimple_shear"], TAX), project)        # twice by the same person
    ls.annotate(people[ANN2], t1, [{"from_name": "ductile", "to_name": "image", "type": "choices",
                                    "value": {"choices": ["banana"]}}], project)        # not in the view
    ls.annotate(people[ANN2], _task_of(admin, project, "e" * 64), answer_result(["gas_pore"], TAX), project)
    ls.annotate(people[ANN2], t0, answer_result(["dimple_equiaxed"], TAX), project)
    assert main(["review", "import", str(out)]) == 0
    rejects = read_jsonl(out / "import.rejects.jsonl")
    assert sorted((r["reason"], r["id"]) for r in rejects) == sorted(
        [("duplicate_annotator", ids[0]), ("duplicate_annotator", ids[0]), ("unknown_choice", ids[1]),
         ("unknown_id", "e" * 64)])
    assert "'banana' is not a taxonomy v1 id of group 'ductile'" in next(r["detail"] for r in rejects
                                                                         if r["reason"] == "unknown_choice")
    text = capsys.readouterr().out
    assert ": 1 kept, 4 rejected (duplicate_annotator: 2, unknown_choice: 1, unknown_id: 1; see " in text
    # the export of another project (the first gold review's) is a one-line error
    other = server["admin"].get(f"/api/projects/{gold_api['project']}/export", params={"exportType": "JSON"})
    (tmp_path / "other.json").write_bytes(other.content)
    assert main(["review", "import", str(out), "--export", str(tmp_path / "other.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {tmp_path / 'other.json'}: its tasks belong to review ") and err.count("\n") == 1
    assert err.endswith(f"not {review['uid']} (the review.json given): this is an export of another project\n")
    # a bad token is one line too, naming the fix
    assert main(["review", "import", str(out), "--token", "not-a-token"]) == 2
    assert capsys.readouterr().err.startswith("error: Label Studio GET /api/projects/")


def test_audit_of_suspects_puts_the_likeliest_errors_first(server, env, tmp_path, capsys):
    manifest, ids = make_manifest(tmp_path / "mined", 8, seed=5)
    feats = [["dimple_equiaxed"]] * 4 + [["ig_facet"]] * 4
    labels = write_labels(tmp_path / "gpt.jsonl", ids, feats)
    # what `fracdata probe` writes: likeliest error first; image 6 twice (its second suspect ranks 4th)
    ranked = [(6, "ig_facet", True, 0.02), (1, "cleavage_facet", False, 0.9), (3, "dimple_equiaxed", True, 0.2),
              (6, "cleavage_facet", False, 0.75), (0, "gas_pore", False, 0.6)]
    sus = tmp_path / "suspects.jsonl"
    sus.write_text("".join(json.dumps({"id": ids[k], "feature": f, "given": g, "probability": p,
                                       "score": round(1 - (p if g else 1 - p), 6)}) + "\n" for k, f, g, p in ranked))
    out = tmp_path / "suspects-audit"
    assert main(["review", "audit", "--labels", str(labels), "--manifest", str(manifest), "--suspects", str(sus),
                 "--n", "3", "--out", str(out), "--push"]) == 0
    project = read_json(out / "review.json")["server"]["project"]
    annotator = server["people"][ANN1]
    # the labelling stream hands out the top suspects in rank order, each pre-annotated with its labels
    seen = []

    def decide(task):
        k = ids.index(task["data"]["fracdata_id"])
        seen.append((k, [c for r in task["predictions"][0]["result"] for c in r["value"]["choices"]], task["data"]["suspect"]))
        return answer_result({6: ["cleavage_facet"], 1: ["dimple_equiaxed"], 3: ["dimple_equiaxed"]}[k], TAX)

    assert _label_stream(annotator, project, decide) == 3
    assert [(k, pre) for k, pre, _ in seen] == [(6, ["ig_facet"]), (1, ["dimple_equiaxed"]), (3, ["dimple_equiaxed"])]
    assert seen[0][2] == ("intergranular facets (ig_facet): labelled present, the probe gives it P = 0.02 (suspect #1, "
                          "score 0.98); cleavage facets (cleavage_facet): labelled absent, the probe gives it P = 0.75 "
                          "(suspect #4, score 0.75)")
    view = server["admin"].get(f"/api/projects/{project}/").json()["label_config"]
    assert 'name="suspect" value="$suspect"' in view
    assert main(["review", "import", str(out)]) == 0
    text = capsys.readouterr().out
    # image 6: both suspects confirmed (ig_facet absent, cleavage_facet present); 1: cleavage_facet not
    # confirmed (the reviewer did not tick it); 3: dimple_equiaxed kept, not confirmed -> 2 of 4
    assert "suspect labels checked: 4, confirmed wrong by the reviewer: 2 (precision 0.500)" in text
    score = read_json(out / "audit_score.json")
    assert score["suspects"]["per_feature"] == {"cleavage_facet": {"checked": 2, "confirmed": 1},
                                                "dimple_equiaxed": {"checked": 1, "confirmed": 0},
                                                "ig_facet": {"checked": 1, "confirmed": 1}}
