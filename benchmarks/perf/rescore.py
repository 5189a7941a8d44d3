"""Re-scoring from the cache: 100 gold items, 2 models, 0 model calls, well under 1 s.

    .venv/bin/python benchmarks/perf/rescore.py

Fills a fresh cache once through a local Chat Completions server (tests/support/openai_server.py,
the real openai SDK as client), then times a second `infer` (all cache hits) + `score` (2,000
bootstrap resamples, 10,000-round paired test) in-process, and the same through the CLI in a new
process (Python and import start-up included). Exits 1 if any model call was made or the
in-process re-score took 1 s or more.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))  # for tests.support


def make_gold(folder: Path, n: int) -> Path:
    import numpy as np
    from PIL import Image

    from fracdata.images import image_id
    from fracdata.records import GoldRecord, dump_jsonl

    rng = np.random.default_rng(0)
    (folder / "img").mkdir(parents=True)
    recs = []
    feats = ["dimple_equiaxed", "cleavage_facet", "ig_facet", "striation_ductile", "gas_pore", "secondary_crack"]
    for i in range(n):
        p = folder / "img" / f"{i:03d}.png"
        Image.fromarray(rng.integers(0, 256, (96, 96), dtype=np.uint8)).save(p)  # 96x96 like the synthetic gold
        recs.append(GoldRecord(id=image_id(p), image=p.name and f"img/{p.name}", features=[feats[i % 6], feats[(i * 7) % 6]]))
    dump_jsonl(recs, folder / "gold.jsonl")
    return folder / "gold.jsonl"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="gold items (default 100)")
    args = ap.parse_args()
    from argparse import Namespace

    from fracbench.infer import infer_model, setup
    from fracbench.score import score_dir
    from tests.support.openai_server import OpenAIStub

    answers = ["Features: dimple_equiaxed", "Features: cleavage_facet, secondary cracks", "Features: none"]
    with tempfile.TemporaryDirectory() as tmp, OpenAIStub(responder=lambda kind, body: answers[len(body["messages"][0]["content"][0]["image_url"]["url"]) % 3]) as stub:
        tmp = Path(tmp)
        gold = make_gold(tmp / "g", args.n)
        entry_file = tmp / "served.yaml"
        entry_file.write_text(f"kind: openai-compatible\nbase_url: {stub.base_url}\nmodel: m\nconcurrency: 8\n"
                              "decoding: {max_tokens: 16, temperature: 0}\n")
        ns = Namespace(task="fractography-v1", gold=str(gold), limit=None, out=str(tmp / "out"), cache=str(tmp / "c.sqlite"),
                       models_dir=None, model_path=None, adapter=None, base_url=None)
        quiet = lambda *a, **k: None  # noqa: E731

        def once():
            task, task_path, thash, tax, items, g, cache, entry = setup(ns)
            for control in (None, "blank"):
                infer_model(task, task_path, thash, tax, entry(str(entry_file)), items, g, ns.out, cache, control=control, log=quiet)
            score_dir(ns.out, log=quiet)

        t0 = time.perf_counter()
        once()
        fill = time.perf_counter() - t0
        calls_fill = stub.counts["chat"]
        t0 = time.perf_counter()
        once()
        rescore = time.perf_counter() - t0
        calls_rescore = stub.counts["chat"] - calls_fill
        env = dict(os.environ, PYTHONPATH=str(ROOT))
        cli = [sys.executable, "-m", "fracbench"]
        common = ["--gold", str(gold), "--out", ns.out, "--cache", ns.cache]
        t0 = time.perf_counter()
        subprocess.run(cli + ["infer", "--model", str(entry_file), *common], check=True, env=env, capture_output=True)
        subprocess.run(cli + ["score", "--out", ns.out], check=True, env=env, capture_output=True)
        cli_s = time.perf_counter() - t0
        calls_cli = stub.counts["chat"] - calls_fill - calls_rescore
    print(f"first pass (fills the cache): {args.n} items x 2 models, {calls_fill} model calls, {fill:.2f} s")
    print(f"re-score in-process (infer from cache + score): {calls_rescore} model calls, {rescore:.3f} s "
          f"({rescore / (2 * args.n) * 1000:.2f} ms per prediction)")
    print(f"re-score through the CLI (2 new processes, imports included): {calls_cli} model calls, {cli_s:.2f} s")
    ok = calls_rescore == 0 and calls_cli == 0 and rescore < 1.0
    print("PASS" if ok else "FAIL: re-scoring must make 0 model calls and take < 1 s")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
