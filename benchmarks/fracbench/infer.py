"""`fracbench infer`: predictions JSONL for each model, one row per gold id.

Row: id, model, raw, labels (taxonomy ids), unknown (terms the parser could not map), status
(ok | none | empty | unparsed | failed), latency_s, usage, cached, and error/finish_reason/
response_model where they apply. Local models add `feature_logprobs` (every taxonomy feature's
log-score, fracdata/inference/feature_probs.py) and, when a calibration.json lies beside the
checkpoint (`fracdata calibrate`), `calibrated_probs`; meta.json's `calibration` says which. A failed call (an HTTP error after the retries, or an API
answer cut off by `finish_reason` length / content_filter, or empty) has status `failed`, no
labels and the reason in `error`; it is scored like any wrong answer and never cached, so the
next run asks again. An API model whose key variable is unset is
skipped with one line and writes nothing. `--control blank` feeds a uniform gray image of each
gold image's size instead, recorded as model `<name>-blank`.
One run per output folder: `infer` and `run` hold an OS lock on <out>/.fracbench.lock, so a second
one on the same --out stops with one line naming the first (pid, host, since) instead of asking
(and paying for) the same items again; the lock dies with its process.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

from fracdata import flags
from fracdata.errors import FracdataError

DEFAULT_TASK = "fractography-v1"
DEFAULT_OUT = "reports/bench"
GRAY = (128, 128, 128)


def add_common(p) -> None:
    p.add_argument("--task", default=DEFAULT_TASK, help=f"shipped task name (`fracbench models` lists them) or a YAML path (default {DEFAULT_TASK})")
    p.add_argument("--gold", help="gold JSONL (default: the task's `gold`); image paths are relative to it")
    p.add_argument("--limit", type=flags.count, help="only the first N gold items: a smoke test, labelled NOT A SCORE")
    p.add_argument("--out", default=DEFAULT_OUT, help=f"output folder (default {DEFAULT_OUT})")
    p.add_argument("--cache", help="prediction cache file (default $FRACBENCH_CACHE or ~/.cache/fracbench/predictions.sqlite)")
    p.add_argument("--models-dir", help="folder of model entries (default: the shipped ones, `fracbench models`)")
    p.add_argument("--model-path", action="append", metavar="NAME=PATH", help="override model NAME's `path` (repeatable)")
    p.add_argument("--adapter", action="append", metavar="NAME=PATH", help="override model NAME's `adapter` (repeatable)")
    p.add_argument("--base-url", action="append", metavar="NAME=URL", help="override model NAME's `base_url` (repeatable)")
    p.add_argument("--adapter-check", choices=["refuse", "warn"], default="refuse",
                   help="a LoRA entry whose adapter changes nothing on the probe images: refuse it (default), or "
                        "score it with a warning in the report")
    p.add_argument("--overwrite", action="store_true", help="use a --cache file that is not a SQLite file (replacing it)")


def add_arguments(p) -> None:
    p.add_argument("--model", action="append", required=True, metavar="M",
                   help="model entry name (`fracbench models` lists them) or a YAML path (repeatable)")
    p.add_argument("--control", choices=["blank"], help="blank: a uniform gray image of the same size (model <name>-blank)")
    add_common(p)


def setup(args):
    """(task, task file, task hash, taxonomy, items, gold path, cache, entry loader) from the common flags."""
    from fracbench.cache import Cache
    from fracdata.inference.entry import MODELS_DIR, load_model, parse_overrides
    from fracdata.inference.task import load_task, task_hash
    from fracbench.data import load_gold
    from fracdata.taxonomy import load_taxonomy

    task, task_path = load_task(args.task)
    tax = load_taxonomy()
    gold = Path(args.gold or task.gold)
    items = load_gold(gold, tax, limit=args.limit)
    overrides = {"path": parse_overrides(args.model_path, "--model-path"),
                 "adapter": parse_overrides(args.adapter, "--adapter"),
                 "base_url": parse_overrides(args.base_url, "--base-url")}
    models_dir = Path(args.models_dir) if args.models_dir else MODELS_DIR

    def entry(ref):
        return load_model(ref, models_dir, overrides)

    entry.overrides = overrides  # type: ignore[attr-defined]
    return task, task_path, task_hash(task), tax, items, gold, Cache(args.cache), entry


def check_overrides(entry, names: list[str]) -> None:
    """An override for a model that is not being run is a typo, not something to ignore."""
    for field, by_name in entry.overrides.items():
        for name in by_name:
            if name not in names:
                flag = {"path": "--model-path", "adapter": "--adapter", "base_url": "--base-url"}[field]
                raise FracdataError(f"{flag} {name}=...: no model {name!r} in this run ({', '.join(names)})")


def _loader(item, control):
    """A callable returning the gold image as training saw it: the builder's normalisation
    (EXIF orientation, alpha over white, 16-bit stretched to 8-bit `L`/`RGB`), or for
    `--control blank` a uniform gray image of that (upright) size."""
    def load():
        from PIL import Image

        from fracdata.images import ImageError, open_normalised

        try:
            im = open_normalised(item.image)
        except ImageError as e:
            raise FracdataError(f"{item.image}: cannot read the gold image: {e}") from None
        return Image.new("RGB", im.size, GRAY) if control == "blank" else im
    return load


def infer_model(task, task_path, thash, tax, entry, items, gold, out_dir, cache, limit=None, control=None, log=print,
                adapter_check="refuse"):
    """Predict every item with one model entry; write predictions + meta. None when skipped."""
    if entry.kind == "labels":  # a labels file scored as a model (the teacher's row): nothing to run
        from fracbench.labels import infer_labels

        return infer_labels(task, task_path, thash, tax, entry, items, gold, out_dir, limit, control, log)
    if entry.kind == "probe":  # logistic regressions on a frozen vision tower (fracbench/probe.py)
        from fracbench.probe import infer_probe

        return infer_probe(task, task_path, thash, tax, entry, items, gold, out_dir, cache, limit, control, log)
    from fracbench import __version__
    from fracbench.cache import model_identity, sha256_json
    from fracdata.inference.task import prompt_text
    from fracbench.data import STATUSES, write_predictions
    from fracdata.answer import parse_answer
    from fracdata.llm import missing_key
    from fracdata.records import sha256_file

    name = entry.name + (f"-{control}" if control else "")
    var = missing_key(entry.api_key_env)
    if var:
        log(f"skipped {name}: set {var} to score it (its key variable is unset)")
        return None
    variant = entry.prompt or task.default_prompt
    prompt = prompt_text(task, variant)
    identity = model_identity(entry, cache)
    decoding = dict(entry.decoding)
    calibration = None
    if entry.kind == "local":
        decoding.setdefault("max_new_tokens", 64)
        from fracdata.inference.calibration import SCORE

        decoding["feature_scores"] = SCORE  # keys the cache: answers cached without scores are not reused
        calibration = _calibration(entry, prompt, tax)
    # Paths are provenance, not identity: a moved checkpoint with the same hash keeps its cache.
    key_identity = {k: v for k, v in identity.items() if k not in ("path", "adapter", "served_path")}
    keys = {it.id: sha256_json({"task": thash, "id": it.id, "model": key_identity, "decoding": decoding,
                                "prompt": sha256_json(prompt), "control": control}) for it in items}
    results = {it.id: cache.get(keys[it.id]) for it in items}
    todo = {it.id: it for it in items if results[it.id] is None}
    model, checked = None, None
    from fracbench.adapter_gate import check, needs_check

    if needs_check(entry):  # before anything is scored: is the adapter applied at all?
        model, checked = check(entry, items, prompt, cache, key_identity, decoding, adapter_check, _loader, log)
    t0 = time.time()
    if todo:
        from fracdata.inference.entry import open_model

        model = model or open_model(entry, log)
        if entry.kind == "local":
            model.score_features(tax)  # every answer also carries every feature's score
        for iid, answer in model.answer(((i, _loader(it, control)) for i, it in todo.items()), prompt, log):
            res = answer.record()  # cache each success as it arrives (an interrupted run keeps them)
            results[iid] = {**res, "_fresh": True}
            if answer.error is None:  # a failure (HTTP error, cut-off or empty answer) is asked again
                cache.put(keys[iid], res)
    rows = []
    for it in items:
        res = dict(results[it.id])
        fresh = res.pop("_fresh", False)
        row = {"id": it.id, "model": name, "raw": res.get("raw", ""), "latency_s": res.get("latency_s"),
               "usage": res.get("usage"), "cached": not fresh}
        if res.get("error"):
            row.update(labels=[], unknown=[], status="failed", error=res["error"])
        else:
            parsed = parse_answer(row["raw"], tax)
            row.update(labels=parsed.labels, unknown=parsed.unknown, status=parsed.status)
        for extra in ("finish_reason", "response_model", "feature_logprobs"):
            if res.get(extra) is not None:
                row[extra] = res[extra]
        if calibration is not None and res.get("feature_logprobs"):
            row["calibrated_probs"] = calibration[0].apply(res["feature_logprobs"])
        rows.append(row)
    statuses = Counter(r["status"] for r in rows)
    meta = {"model": name, "entry": entry.name, "kind": entry.kind, "control": control, "identity": identity,
            "decoding": decoding, "prompt_variant": variant, "prompt_sha256": sha256_json(prompt),
            "task": {"name": task.name, "version": task.version, "file": str(task_path), "hash": thash},
            "gold": {"path": str(gold), "sha256": sha256_file(gold)}, "limit": limit, "n": len(rows),
            "cached": len(rows) - len(todo), "computed": len(todo),
            "calibration": None if calibration is None else {"file": str(calibration[1]), "method": calibration[0].method,
                                                             "fitted_on": calibration[0].fitted_on.model_dump()},
            "statuses": {s: statuses.get(s, 0) for s in STATUSES},
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"), "fracbench": __version__}
    if checked is not None:
        meta["adapter_check"] = checked
    path = write_predictions(out_dir, name, rows, meta)
    counts = ", ".join(f"{s} {statuses.get(s, 0)}" for s in STATUSES)
    log(f"wrote {path}: {len(rows)} rows ({len(rows) - len(todo)} cached, {len(todo)} computed in "
        f"{time.time() - t0:.1f} s; {counts})")
    return meta


def _calibration(entry, prompt: str, tax):
    """(Calibration, its file) beside a local entry's checkpoint, or None when it has none."""
    import hashlib

    from fracdata.inference.calibration import calibration_path, load_calibration
    from fracdata.inference.local import local_folder

    path = local_folder(entry.path, "path", entry.name)
    adapter = local_folder(entry.adapter, "adapter", entry.name) if entry.adapter else None
    file = calibration_path(path, adapter)
    cal = load_calibration(file, tax, hashlib.sha256(prompt.encode()).hexdigest())
    return None if cal is None else (cal, file)


def exclusive_out(out, args=None) -> object:
    """The lock `infer` and `run` hold on their output folder (fracdata.files.exclusive), after
    checking (with `args`) that no input is the folder or the cache and that the cache is SQLite
    (fracdata.files.check_outputs). The folder may hold other files: fracbench only adds its own."""
    from fracbench.cache import default_path
    from fracdata.files import Output, check_outputs, exclusive, sqlite_file

    if args is not None:
        check_outputs([Output(Path(out), "fracbench output folder"),
                       Output(Path(args.cache) if args.cache else default_path(), "prediction cache", sqlite_file)],
                      [args.gold, args.task, *(getattr(args, "model", None) or getattr(args, "models", None) or [])],
                      overwrite=args.overwrite)
    return exclusive(Path(out) / ".fracbench.lock", out, "fracbench infer/run",
                     "wait for it to finish (a second run would ask, and pay for, the same items again)")


def run(args) -> int:
    with exclusive_out(args.out, args):
        return _run(args)


def _run(args) -> int:
    task, task_path, thash, tax, items, gold, cache, entry = setup(args)
    print(f"task {task.name} v{task.version} ({thash[:12]}): {len(items)} gold items from {gold}"
          + (f" (--limit {args.limit}: NOT A SCORE)" if args.limit else ""))
    entries = [entry(ref) for ref in args.model]
    check_overrides(entry, [e.name for e in entries])
    for e in entries:
        infer_model(task, task_path, thash, tax, e, items, gold, args.out, cache, limit=args.limit, control=args.control,
                    adapter_check=args.adapter_check)
    return 0
