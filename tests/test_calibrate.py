"""`fracdata calibrate` end to end on the tiny Qwen3-VL: calibration.json beside the checkpoint with
its provenance, applied by `fracdata analyze` and by `fracbench run` (whose report then shows the
model's calibration before and after)."""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest

from fracdata.cli import main
from fracdata.records import GoldRecord, read_jsonl
from tests.support.bench_kit import make_gold

VAL = 10


@pytest.fixture(scope="module")
def calibrated(tiny_model, synth_small, tmp_path_factory):
    """A copy of the tiny model calibrated on a 10-image val split; (tmp, entry, model dir, dataset dir, stdout)."""
    import io
    from contextlib import redirect_stdout

    from fracdata.dataset.sharegpt import make_row
    from fracdata.taxonomy import load_taxonomy

    tmp = tmp_path_factory.mktemp("calibrate")
    model = tmp / "model"
    shutil.copytree(tiny_model, model)
    data = tmp / "dataset"
    (data / "images").mkdir(parents=True)
    tax = load_taxonomy()
    rows = []
    for _, rec in list(read_jsonl(synth_small / "gold.jsonl", GoldRecord, "test"))[N_GOLD:N_GOLD + VAL]:
        shutil.copy(synth_small / rec.image, data / "images" / f"{rec.id}.png")
        rows.append(make_row(rec.id, rec.id, rec.features, tax, "none", "mined"))
    (data / "val.json").write_text(json.dumps(rows))
    (data / "build.json").write_text(json.dumps({"input_hash": "ab" * 32}))
    entry = tmp / "tiny-cal.yaml"
    entry.write_text(f"name: tiny-cal\nkind: local\npath: {model}\nprompt: training\nbatch_size: 4\n"
                     "decoding: {max_new_tokens: 8}\n")
    buf = io.StringIO()
    with redirect_stdout(buf):
        assert main(["calibrate", "--model", str(entry), "--dataset-dir", str(data)]) == 0
    return {"tmp": tmp, "entry": str(entry), "model": model, "data": data, "stdout": buf.getvalue(), "rows": rows}


N_GOLD = 4


def test_calibration_json_lies_beside_the_checkpoint_with_its_provenance(calibrated):
    from fracdata.answer import render_prompt
    from fracdata.taxonomy import load_taxonomy

    tax = load_taxonomy()
    path = calibrated["model"] / "calibration.json"
    cal = json.loads(path.read_text())
    val = calibrated["data"] / "val.json"
    ids = sorted(r["id"] for r in calibrated["rows"])
    assert cal["fitted_on"] == {
        "dataset_dir": str(calibrated["data"].resolve()), "build_input_hash": "ab" * 32, "val_file": "val.json",
        "val_sha256": hashlib.sha256(val.read_bytes()).hexdigest(), "val_images": VAL,
        "val_ids_sha256": hashlib.sha256("".join(i + "\n" for i in ids).encode()).hexdigest(),
        "labels": "val.json's answers: the labels the model trained on (the labeller's, a person's where reviewed)"}
    assert (cal["method"], cal["score"], cal["taxonomy"]) == ("platt-per-feature-shrunk", "next-item-v1",
                                                              {"version": tax.version, "sha256": tax.sha256})
    assert cal["model"]["prompt_sha256"] == hashlib.sha256(render_prompt().encode()).hexdigest()
    assert list(cal["features"]) == tax.ids and cal["shrinkage"] in (0.1, 1.0, 10.0, 100.0, 1e6)
    positives = {f: sum(f in r["messages"][1]["content"].removeprefix("Features: ").split(", ")
                        for r in calibrated["rows"]) for f in tax.ids}
    assert {f: m["positives"] for f, m in cal["features"].items()} == positives
    assert all(m["positives"] + m["negatives"] == VAL and m["slope"] > 0 for m in cal["features"].values())
    assert set(cal["cv"]["logloss_per_cell"]) == set(cal["cv"]["standard_error"]) == {"0.1", "1.0", "10.0", "100.0", "1000000.0"}
    cv, se = cal["cv"]["logloss_per_cell"], cal["cv"]["standard_error"]
    best = min(cv, key=cv.get)  # the one-standard-error rule, read back from the file
    assert cal["shrinkage"] == max(float(k) for k in cv if cv[k] <= cv[best] + se[best])
    out = calibrated["stdout"]
    assert f"calibrating tiny-cal on {VAL} val images of {calibrated['data']} -> {path}" in out
    assert f"wrote {path}: platt-per-feature-shrunk over {VAL} val images x 53 features" in out


def test_analyze_applies_it_and_the_threshold_decides_who_must_look(calibrated, tmp_path, capsys):
    from fracdata.inference.calibration import logit_of_logprob

    img = next((calibrated["data"] / "images").iterdir())
    cal = json.loads((calibrated["model"] / "calibration.json").read_text())
    for t, expect in (("1.0", True), ("0.51", None)):
        out = tmp_path / t
        assert main(["analyze", str(img), "--specialist", calibrated["entry"], "--generalist", "none",
                     "--review-threshold", t, "--out", str(out)]) == 0
        a = json.loads(next(out.glob("*.json")).read_text())
        s = a["specialist"]
        assert s["probability_kind"] == "calibrated" and s["calibration"]["file"] == str(calibrated["model"] / "calibration.json")
        for p in s["probabilities"]:
            m = cal["features"][p["id"]]
            want = 1 / (1 + math.exp(-(m["slope"] * logit_of_logprob(math.log(max(p["score"], 1e-300))) + m["bias"])))
            assert p["probability"] == pytest.approx(want, abs=2e-5)
        unsure = [p["id"] for p in s["probabilities"] if p["decision"] == "review"]
        assert a["review"]["features"] == unsure and a["needs_person"] is bool(unsure)
        if expect is True:  # at 1.0 only a probability of exactly 0 or 1 is decided alone
            assert a["needs_person"] is True and len(unsure) == 53
    assert "calibrated probabilities from" in capsys.readouterr().out
    assert main(["analyze", str(img), "--specialist", calibrated["entry"], "--generalist", "none",
                 "--review-threshold", "0.5", "--out", str(tmp_path / "x")]) == 2
    assert "error: --review-threshold 0.5: must be above 0.5 and at most 1" in capsys.readouterr().err


def test_fracbench_reports_calibration_before_and_after(calibrated, tiny_model, synth_small, capsys):
    from PIL import Image

    from fracbench.cli import main as bench
    from tests.support.bench_kit import entry, rows

    tmp = calibrated["tmp"]
    make_gold(synth_small, tmp / "g", N_GOLD)
    base = entry(tmp, "tiny-base", tiny_model, 4)  # the same weights, no calibration.json beside them
    args = ["run", "--models", base, calibrated["entry"], "--gold", str(tmp / "g" / "gold.jsonl"), "--out",
            str(tmp / "out"), "--cache", str(tmp / "cache.sqlite")]
    assert bench(args) == 0
    assert "predictions/tiny-cal.jsonl: 4 rows (4 cached, 0 computed" in capsys.readouterr().out  # calibration.json keys nothing
    got = rows(tmp / "out", "tiny-cal")
    assert all(len(r["feature_logprobs"]) == 53 and len(r["calibrated_probs"]) == 53 for r in got)
    assert all("calibrated_probs" not in r for r in rows(tmp / "out", "tiny-base"))
    meta = json.loads((tmp / "out" / "predictions" / "tiny-cal.meta.json").read_text())
    assert meta["calibration"]["file"] == str(calibrated["model"] / "calibration.json")
    m = json.loads((tmp / "out" / "metrics.json").read_text())["models"]
    assert m["tiny-base"]["calibration"]["calibrated"] is None
    raw, cal = m["tiny-cal"]["calibration"]["raw"], m["tiny-cal"]["calibration"]["calibrated"]
    assert raw == m["tiny-base"]["calibration"]["raw"]  # same weights, same scores
    assert (cal["cells"], cal["images"]) == (N_GOLD * 53, N_GOLD)
    md = (tmp / "out" / "report.md").read_text()
    assert f"| tiny-cal | calibrated ({VAL} val images) | {cal['smooth_ece']['value']:.4f} " in md
    assert "- tiny-base: no calibration.json beside its checkpoint (run `fracdata calibrate`): raw only." in md
    assert Image.open(tmp / "out" / "calibration.png").size == (1000, 800)
