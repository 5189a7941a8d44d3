"""The builder under hostile use (issue 17): two builds on one --out, a SIGKILLed build's workers,
captions that hold line separators other than \\n, a build in which nothing survives, and the
messages it prints (card, leak). Each runs the real CLI (tests/support/hostile.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fracdata.images import image_id
from tests.support.hostile import ROOT, check, run
from tests.support.hostile_images import encode, texture


def dataset(folder: Path, n: int, side: int = 96, captions=None, features=("dimples",)) -> tuple[Path, Path]:
    """n distinct images with a manifest and GPT labels; captions[k] written as is (ensure_ascii off)."""
    (folder / "images").mkdir(parents=True)
    man, lab = [], []
    for k in range(n):
        path = folder / "images" / f"{k}.png"
        path.write_bytes(encode(texture(1000 + k, (side, side)), "PNG"))
        i = image_id(path)
        man.append({"id": i, "image": f"images/{k}.png", "source": {"doi": f"10.9/{k}"},
                    "caption": captions[k] if captions else f"Fig. {k}."})
        lab.append({"id": i, "features": list(features), "labeler": {"kind": "gpt"}})
    for name, rows in (("manifest.jsonl", man), ("labels.jsonl", lab)):
        (folder / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return folder / "manifest.jsonl", folder / "labels.jsonl"


def argv(man: Path, lab: Path, out: Path, *extra) -> list:
    return ["build", "--manifest", man, "--labels", lab, "--out", out, *extra]


def start(args: list) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{ROOT / 'benchmarks'}")
    return subprocess.Popen([sys.executable, "-m", "fracdata", *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def wait_for(cond, what: str, proc: subprocess.Popen, timeout: float = 120):
    deadline = time.monotonic() + timeout
    while not cond():
        assert proc.poll() is None, f"the build ended ({proc.returncode}) before {what}"
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.01)


def test_a_second_build_on_the_same_out_stops_naming_the_first(tmp_path):
    man, lab = dataset(tmp_path / "raw", 40)
    out, lock = tmp_path / "ds", tmp_path / ".ds.lock"
    first = start(argv(man, lab, out, "--workers", "1"))
    try:
        wait_for(lambda: lock.is_file() and f'"pid": {first.pid}' in lock.read_text(), "the lock", first)
        os.kill(first.pid, signal.SIGSTOP)  # hold it mid-build, so the second one surely meets it
        r = check(run(argv(man, lab, out)), (2,))
        assert r.errors == [f"error: {out}: another fracdata build is writing here (pid {first.pid} on "
                            f"{os.uname().nodename} since {json.loads(lock.read_text())['since']}); wait for it to "
                            "finish (or give another --out)"]
    finally:
        os.kill(first.pid, signal.SIGCONT)
    assert first.wait(120) == 0, first.stderr.read()
    first.stdout.close(), first.stderr.close()
    assert "up to date" in check(run(argv(man, lab, out)), (0,)).stdout  # the lock died with its process


def _children(pid: int) -> list[int]:
    return [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]


def _running(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] not in ("Z", "X")
    except FileNotFoundError:
        return False


@pytest.mark.slow  # 36 s in the clean-clone fast run: two builds of 300 images at 256 px
def test_a_killed_build_leaves_no_worker_running(tmp_path):
    man, lab = dataset(tmp_path / "raw", 300, side=256)
    build = start(argv(man, lab, tmp_path / "ds", "--workers", "2"))
    try:
        wait_for(lambda: any(len(list(t.glob("images/*.png"))) >= 5 for t in tmp_path.glob(".ds.tmp-*")),
                 "images written", build)
        workers = _children(build.pid)
        assert len(workers) >= 2, workers
        os.kill(build.pid, signal.SIGKILL)  # the build alone, as the OOM killer would
        build.wait(10)
        deadline = time.monotonic() + 15
        while any(map(_running, workers)) and time.monotonic() < deadline:
            time.sleep(0.05)
        alive = [w for w in workers if _running(w)]
    finally:
        for w in workers if "workers" in dir() else []:
            if _running(w):
                os.kill(w, signal.SIGKILL)
        build.stdout.close(), build.stderr.close()
    assert alive == [], f"workers {alive} outlived the killed build"
    # no stale lock: the next build on the same --out runs (the OS dropped the killed one's lock)
    r = check(run(argv(man, lab, tmp_path / "ds", "--workers", "1")), (0,))
    assert "another fracdata build" not in r.stdout + r.stderr and (tmp_path / "ds" / "build.json").is_file()
    assert list(tmp_path.glob(".ds.tmp-*")) == []  # the killed build's temporary folder is cleared, not left behind


def test_a_caption_holding_u2028_or_u0085_cannot_hide_a_changed_image(tmp_path):
    """The fingerprint reads lines as read_jsonl does (split at \\n only): str.splitlines() broke
    line 1 at U+2028, lost its record, and a changed image 0 was then 'up to date'."""
    man, lab = dataset(tmp_path / "raw", 12, captions=["Fig. 0.\u2028Overload.", "Fig. 1.\x85Fatigue."]
                       + [f"Fig. {k}." for k in range(2, 12)])
    out = tmp_path / "ds"
    check(run(argv(man, lab, out)), (0,))
    for k in (0, 1):
        (tmp_path / "raw" / "images" / f"{k}.png").write_bytes(encode(texture(5000 + k, (96, 96)), "PNG"))
        r = check(run(argv(man, lab, out)), (0,))
        assert "up to date" not in r.stdout, f"image {k}'s change was not seen"
        rejects = [json.loads(x) for x in (out / "rejects.jsonl").read_text().splitlines()]
        assert sorted(x["line"] for x in rejects if x["reason"] == "id_mismatch") == list(range(1, k + 2))


def test_when_nothing_survives_the_error_names_the_unknown_features_and_rejects_are_written(tmp_path):
    man, lab = dataset(tmp_path / "raw", 3, features=("banana split", "dimples"))
    out, beside = tmp_path / "ds", tmp_path / "ds.rejects.jsonl"
    r = check(run(argv(man, lab, out)), (2,))
    assert r.errors == [f"error: no training image survived (mined read 3, kept 0, no_label 3; labels read 3, kept 0, "
                        f"unknown_feature 3); unknown feature names: 'banana split' 3; wrote {beside} (6 rejects), "
                        "nothing else (OUT is left as it was)"]
    rejects = [json.loads(x) for x in beside.read_text().splitlines()]
    assert sorted(x["reason"] for x in rejects) == ["no_label"] * 3 + ["unknown_feature"] * 3
    assert not out.exists()
    man, lab = dataset(tmp_path / "good", 12)
    check(run(argv(man, lab, out)), (0,))
    assert not beside.exists()  # the failed build's rejects no longer describe OUT
    card = (out / "README.md").read_text()
    assert "| full | `train_full.json` | 44 | none kept | yes |" in card  # no --manual: not "manual images: yes"
    assert "| mined_only | `train_mined_only.json` | 11 | no | no |" in card


def test_a_gold_copy_is_named_an_identity_transform_not_id(tmp_path):
    man, lab = dataset(tmp_path / "raw", 12)
    first = json.loads(man.read_text().splitlines()[0])
    (tmp_path / "raw" / "gold.jsonl").write_text(json.dumps({"id": first["id"], "image": first["image"],
                                                             "features": ["dimples"]}) + "\n")
    r = check(run([*argv(man, lab, tmp_path / "ds"), "--gold", tmp_path / "raw" / "gold.jsonl"]), (2,))
    assert f"= gold {first['id']} (identity transform, phash distance 0)" in r.errors[0]
