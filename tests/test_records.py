import json

from fracdata.records import GoldRecord, LabelRecord, ManifestRecord, Reject, dump_jsonl, read_jsonl, sha256_bytes

SHA = sha256_bytes(b"img")


def test_read_jsonl_turns_every_bad_line_into_a_reject_and_counts_add_up(tmp_path):
    p = tmp_path / "m.jsonl"
    good = {"id": SHA, "image": "a.png", "source": {"doi": "10.1/x", "licence": "CC BY 4.0"}}
    lines = [json.dumps(good), "{not json", "[1, 2]", json.dumps({"id": "xyz", "image": "b.png"}),
             json.dumps({**good, "colour": "red"}), "", json.dumps({**good, "caption": "c"})]
    p.write_text("\n".join(lines) + "\n")
    out = list(read_jsonl(p, ManifestRecord, "build"))
    kept = [(n, r) for n, r in out if isinstance(r, ManifestRecord)]
    rejects = [(n, r) for n, r in out if isinstance(r, Reject)]
    assert [n for n, _ in kept] == [1, 7]
    assert [(n, r.reason) for n, r in rejects] == [
        (2, "malformed_json"), (3, "malformed_json"), (4, "invalid_record"), (5, "invalid_record")]
    assert rejects[2][1].detail.startswith("id: String should match pattern")
    assert rejects[3][1].detail == "colour: Extra inputs are not permitted"
    assert len(kept) + len(rejects) == 6  # blank line is not a record


def test_label_and_gold_records_round_trip(tmp_path):
    lab = LabelRecord(id=SHA, features=["gas_pore"], labeler={"kind": "gpt", "model": "gpt-5.2",
                      "usage": {"input_tokens": 10}})
    gold = GoldRecord(id=SHA, image="gold/x.png", features=["gas_pore"], annotators={"a": ["gas_pore"], "b": []})
    n = dump_jsonl([lab, gold], tmp_path / "x.jsonl")
    assert n == 2
    rows = (tmp_path / "x.jsonl").read_text().splitlines()
    assert json.loads(rows[0]) == {"features": ["gas_pore"], "id": SHA,
                                   "labeler": {"kind": "gpt", "model": "gpt-5.2", "usage": {"input_tokens": 10}}}
    assert GoldRecord.model_validate_json(rows[1]) == gold


def test_a_non_utf8_line_is_a_reject_and_the_read_goes_on(tmp_path):
    p = tmp_path / "m.jsonl"
    good = json.dumps({"id": SHA, "image": "a.png"}).encode()
    p.write_bytes(good + b"\n" + b'{"id": "x", "caption": "caf\xe9"}\n' + good.replace(b"a.png", b"b.png") + b"\n")
    out = list(read_jsonl(p, ManifestRecord, "build"))
    assert [(n, type(r).__name__) for n, r in out] == [(1, "ManifestRecord"), (2, "Reject"), (3, "ManifestRecord")]
    assert (out[1][1].reason, out[1][1].detail) == ("malformed_json", "not UTF-8 (byte 27)")


def test_gold_annotators_may_not_be_an_empty_mapping():
    import pytest
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="annotators must name at least one annotator"):
        GoldRecord(id=SHA, image="g.png", features=[], annotators={})
