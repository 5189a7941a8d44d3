"""The `fracdata calibrate` command: val split -> scores -> fitted maps -> calibration.json."""

from __future__ import annotations

import hashlib
import json
import os
import time
from datetime import datetime, timezone
from pathlib import Path

from fracdata.errors import FracdataError


def add_arguments(p) -> None:
    p.add_argument("--model", default=os.environ.get("FRACDATA_SPECIALIST"),
                   help="local model entry (a fracdata/inference/models name or a YAML path); default $FRACDATA_SPECIALIST")
    p.add_argument("--dataset-dir", required=True, help="the dataset `fracdata build` wrote (its val.json is used)")
    p.add_argument("--out", help="calibration file (default: calibration.json beside the checkpoint, in the adapter's "
                                 "folder for a LoRA entry, where analyze, serve and fracbench look)")
    p.add_argument("--task", default="fractography-v1", help="task whose prompt the model gets (default fractography-v1)")
    p.add_argument("--models-dir", help="folder of model entries (default fracdata/inference/models)")
    p.add_argument("--model-path", action="append", metavar="NAME=PATH", help="override entry NAME's `path`")
    p.add_argument("--adapter", action="append", metavar="NAME=PATH", help="override entry NAME's `adapter`")
    p.add_argument("--seed", type=int, default=0, help="cross-validation folds' seed (default 0)")


def val_items(dataset_dir: Path, taxonomy) -> tuple[list[tuple[str, Path, list[str]]], dict]:
    """[(image id, image file, label features)] of val.json, and its provenance fields."""
    from fracdata.answer import parse_answer

    val = dataset_dir / "val.json"
    if not val.is_file():
        raise FracdataError(f"{val} not found: --dataset-dir must be a folder `fracdata build` wrote")
    data = val.read_bytes()
    try:
        rows = json.loads(data)
        items = []
        for r in rows:
            answer = next(m["content"] for m in r["messages"] if m["role"] == "assistant")
            items.append((r["id"], dataset_dir / r["images"][0], parse_answer(answer, taxonomy).labels))
    except (ValueError, KeyError, TypeError, IndexError, StopIteration) as e:
        raise FracdataError(f"{val}: not a val split written by fracdata build ({type(e).__name__}: {e})") from None
    if not items:
        raise FracdataError(f"{val}: the val split is empty: rebuild with a larger --val-fraction to calibrate")
    build = dataset_dir / "build.json"
    try:
        input_hash = json.loads(build.read_text()).get("input_hash") if build.is_file() else None
    except (OSError, ValueError):
        input_hash = None
    ids = "".join(i + "\n" for i in sorted(i for i, _, _ in items)).encode()
    prov = {"dataset_dir": str(dataset_dir.resolve()), "build_input_hash": input_hash, "val_file": "val.json",
            "val_sha256": hashlib.sha256(data).hexdigest(), "val_images": len(items),
            "val_ids_sha256": hashlib.sha256(ids).hexdigest(),
            "labels": "val.json's answers: the labels the model trained on (the labeller's, a person's where reviewed)"}
    return items, prov


def run(args) -> int:
    import numpy as np
    from tqdm import tqdm

    from fracdata import __version__
    from fracdata.calibrate.fit import calibrate, logits
    from fracdata.inference.entry import MODELS_DIR, load_model, open_model, parse_overrides
    from fracdata.inference.task import load_task, prompt_text
    from fracdata.files import atomic_write_bytes
    from fracdata.images import ImageError, open_normalised
    from fracdata.inference.calibration import FILE, Calibration, PlattMap, calibration_path
    from fracdata.taxonomy import load_taxonomy

    if not args.model:
        raise FracdataError("no model: pass --model ENTRY (a local model entry such as tiny-ft) or set FRACDATA_SPECIALIST")
    tax = load_taxonomy()
    items, prov = val_items(Path(args.dataset_dir), tax)
    overrides = {"path": parse_overrides(args.model_path, "--model-path"),
                 "adapter": parse_overrides(args.adapter, "--adapter")}
    entry = load_model(args.model, Path(args.models_dir) if args.models_dir else MODELS_DIR, overrides)
    if entry.kind != "local":
        raise FracdataError(f"model {entry.name}: kind {entry.kind!r}; calibration needs every feature's score, which "
                            "only a local checkpoint gives (an endpoint returns at most its own answer's tokens)")
    task, _ = load_task(args.task)
    prompt = prompt_text(task, entry.prompt or task.default_prompt)
    model = open_model(entry).score_features(tax)
    out = Path(args.out) if args.out else calibration_path(model.path, model.adapter)
    print(f"calibrating {entry.name} on {len(items)} val images of {args.dataset_dir} -> {out}", flush=True)

    def loader(path):
        def load():
            try:
                return open_normalised(path)
            except ImageError as e:
                raise FracdataError(f"{path}: cannot read the val image: {e}") from None
        return load

    t0 = time.time()
    scores = {}
    bar = tqdm(total=len(items), desc="calibrate", unit="image", mininterval=1.0)
    for iid, a in model.answer([(i, loader(p)) for i, p, _ in items], prompt, log=lambda m: None):
        scores[iid] = a.feature_logprobs
        bar.update(1)
    bar.close()
    Z = logits(np.array([[scores[i][f] for f in tax.ids] for i, _, _ in items]))
    Y = np.array([[f in set(labels) for f in tax.ids] for _, _, labels in items], dtype=float)
    res = calibrate(Z, Y, seed=args.seed)
    s, b = float(res["theta"][0]), float(res["theta"][1])
    F = len(tax.ids)
    sf, bf = res["theta"][2:2 + F], res["theta"][2 + F:]
    pos = Y.sum(0)
    cal = Calibration(
        shared=PlattMap(slope=float(np.exp(s)), bias=b, positives=int(pos.sum()), negatives=int(Y.size - pos.sum())),
        features={f: PlattMap(slope=float(np.exp(s + sf[j])), bias=float(b + bf[j]), positives=int(pos[j]),
                              negatives=int(len(Y) - pos[j])) for j, f in enumerate(tax.ids)},
        shrinkage=float(res["lam"]),
        cv={"folds": 5, "seed": args.seed, "rule": "largest shrinkage within one standard error of the best",
            "logloss_per_cell": {repr(k): v[0] for k, v in res["cv"].items()},
            "standard_error": {repr(k): v[1] for k, v in res["cv"].items()},
            "raw_logloss_per_cell": res["raw_logloss"], "fitted_logloss_per_cell": res["fitted_logloss"]},
        fitted_on=prov,
        model={"entry": entry.name, "path": str(model.path), "adapter": str(model.adapter) if model.adapter else None,
               "prompt_sha256": hashlib.sha256(prompt.encode()).hexdigest(), "runtime": model.describe()},
        taxonomy={"version": tax.version, "sha256": tax.sha256},
        created=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), fracdata=__version__)
    out.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(out, (json.dumps(cal.model_dump(mode="json"), indent=1) + "\n").encode())
    cv = res["cv"][res["lam"]][0]
    print(f"wrote {out}: {cal.method} over {len(items)} val images x {F} features ({int(pos.sum())} positive "
          f"cells) in {time.time() - t0:.1f} s; log-loss per cell {res['raw_logloss']:.4f} uncalibrated -> "
          f"{cv:.4f} calibrated (5-fold cross-validated over images; shrinkage {res['lam']:g}, shared slope "
          f"{np.exp(s):.3f} = temperature {1 / np.exp(s):.2f}, bias {b:+.3f})" + ("" if out.name == FILE else
          f"; analyze and serve read {FILE} beside the checkpoint"))
    return 0
