"""Before a LoRA entry is scored: is its adapter applied at all? (fracdata/inference/probe.py)

A local entry with `adapter`, or an openai-compatible entry naming its base on the same server
(`lora_base`), is probed on the first PROBES gold images, base against adapter. An inert adapter
(the same answers, and logits or logprobs within tolerance, on every probe), or a local one peft
loaded with "missing adapter keys" (the trained weights did not load), stops the run with one
line; `--adapter-check warn` scores it anyway, with a warning in the log, the predictions' meta,
metrics.json and a banner at the top of the report. A pass is cached (keyed by the model's
identity, the probes and the prompt), so a re-run loads nothing; a refusal never is.
"""

from __future__ import annotations

import warnings

from fracdata.errors import FracdataError

PROBES = 3
MODES = ("refuse", "warn")


def needs_check(entry) -> bool:
    return (entry.kind == "local" and bool(entry.adapter)) or (entry.kind == "openai-compatible" and bool(entry.lora_base))


def check(entry, items, prompt: str, cache, key_identity: dict, decoding: dict, mode: str, loader, log=print):
    """(the opened model or None, the check's record) for an entry that needs_check."""
    from fracbench.cache import sha256_json

    probes = items[:PROBES]
    key = sha256_json({"adapter_check": 1, "model": key_identity, "lora_base": entry.lora_base, "decoding": decoding,
                       "prompt": sha256_json(prompt), "probes": [it.id for it in probes]})
    hit = cache.get(key)
    if hit is not None:
        log(f"model {entry.name}: adapter applied (checked before, {hit['probes']} probes; cached)")
        return None, {**hit, "cached": True}
    images = [loader(it, None)() for it in probes]
    model, result = _probe(entry, images, prompt, log)
    rec = {**result.record(), "base": entry.path if entry.kind == "local" else entry.lora_base,
           "probe_ids": [it.id for it in probes], "mode": mode}
    what = f"{entry.adapter}" if entry.kind == "local" else f"served model {entry.model!r}"
    # peft's "missing adapter keys": the trained weights did not load. With `init_lora_weights: false` in the
    # adapter's config the unloaded LoRA layers start random, so the model differs from its base (not inert)
    # and is still not the adapter that was trained.
    missing = next((w for w in result.warnings if "missing adapter keys" in w.lower()), None)
    rec["missing_keys"] = missing is not None
    if not result.inert and missing is None:
        log(f"model {entry.name}: adapter applied ({result.describe()})")
        cache.put(key, rec)
        return model, rec
    if result.inert:
        peft = f"; peft warned: {result.warnings[0]}" if result.warnings else ""
        line = (f"model {entry.name}: the adapter {what} changes nothing: {result.describe()} against the base "
                f"{rec['base']}{peft}. Its weights are not applied (module names that match nothing?); its scores "
                "would be the base model's")
    else:
        line = (f"model {entry.name}: the adapter {what} did not load as trained: peft warned: {missing}. Its LoRA "
                f"layers hold initial weights, not the trained ones ({result.describe()} against the base "
                f"{rec['base']}); its scores would be no trained model's")
    if mode == "refuse":
        raise FracdataError(line + " (--adapter-check warn scores it anyway, flagged in the report)")
    log("WARNING: " + line + "; scored anyway (--adapter-check warn), flagged in the report")
    return model, rec


def _probe(entry, images, prompt, log):
    from fracdata.inference.entry import open_model
    from fracdata.inference.probe import probe_local, probe_served

    if entry.kind == "local":
        with warnings.catch_warnings(record=True) as caught:  # peft's "Found missing adapter keys" is only a warning
            warnings.simplefilter("always")
            model = open_model(entry, log)
        result = probe_local(model, images, prompt)
        result.warnings = [_short(str(w.message)) for w in caught if "adapter" in str(w.message).lower()]
        return model, result
    from fracdata.inference.endpoint import Endpoint

    model = open_model(entry, log)
    base = Endpoint(entry.base_url, entry.lora_base, entry.api_key_env, entry.decoding, entry.max_retries,
                    entry.timeout_s, name=f"model {entry.name} (base)", resize=model.resize, concurrency=entry.concurrency)
    return model, probe_served(model, base, images, prompt)


def _short(message: str) -> str:
    """peft's "Found missing adapter keys while loading the checkpoint: ['a', 'b', ...]" -> its count and the first."""
    import re

    first = message.strip().splitlines()[0] if message.strip() else message
    m = re.match(r"(.*?):\s*\[(.*)\]\.?\s*$", first)
    if not m:
        return first[:200]
    keys = [k.strip(" '\"") for k in m.group(2).split(",") if k.strip()]
    return f"{m.group(1)} ({len(keys)} keys, e.g. {keys[0] if keys else '?'})"


def banner(prov_models: dict) -> list[str]:
    """Report lines: a loud warning for every model whose adapter was found inert or not loaded as trained."""
    out = []
    for name, m in prov_models.items():
        c = (m or {}).get("adapter_check") or {}
        if c.get("missing_keys") and not c.get("inert"):
            out += [f"> **WARNING: `{name}`'s adapter did not load as trained** (peft: missing adapter keys): its LoRA "
                    "layers hold initial weights. Its row is no trained model's score (scored with `--adapter-check warn`).",
                    ""]
        elif c.get("inert"):
            out += [f"> **WARNING: `{name}`'s adapter changes nothing**: {c.get('same_answers')}/{c.get('probes')} probe "
                    f"answers are identical to its base `{c.get('base')}`"
                    + (f" and logits differ by at most {c['max_logit_diff']:.3g}" if c.get("max_logit_diff") is not None else "")
                    + ". Its row is the base model's score under the adapter's name (scored with `--adapter-check warn`).", ""]
    return out
