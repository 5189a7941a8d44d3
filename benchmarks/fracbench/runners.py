"""How fracbench (and `fracdata analyze`) open a model entry and ask it, over fracdata.inference.

`open_model` turns a `local` entry into a loaded checkpoint (transformers + peft, on the GPU when
one is visible) and an `openai-compatible` entry into an endpoint client; `answers` takes
(id, image loader) pairs and yields (id, Answer) as answers arrive, so nothing is joined by
position. There is no in-process vLLM engine: to score at scale, serve the checkpoint with
`vllm serve` and score it as an `openai-compatible` entry (docs/bench.md, models/vllm-served.yaml).
"""

from __future__ import annotations


def open_model(entry, log=print, who: str = "model"):
    """A LocalModel or an Endpoint for the entry; `who` opens its messages ("model", "specialist")."""
    if entry.kind == "local":
        from fracdata.inference.local import LocalModel, local_folder, resolved_runtime

        path = local_folder(entry.path, "path", entry.name)
        adapter = local_folder(entry.adapter, "adapter", entry.name) if entry.adapter else None
        rt = resolved_runtime(entry.dtype)
        model = LocalModel(path, adapter, rt["device"], rt["dtype"], entry.image_max_pixels, entry.image_min_pixels,
                           name=f"{who} {entry.name}")
        log(f"{who} {entry.name}: loaded {path}" + (f" + adapter {adapter}" if adapter else "")
            + f" ({model.describe()}) in {model.load_s:.1f} s")
        return model
    from fracdata.inference.endpoint import Endpoint

    # A served checkpoint (served_path) gets training's pixels, like the same checkpoint run locally.
    resize = (entry.image_max_pixels, entry.image_min_pixels) if entry.served_path else None
    return Endpoint(entry.base_url, entry.model, entry.api_key_env, entry.decoding, entry.max_retries,
                    entry.timeout_s, name=f"{who} {entry.name}", resize=resize)


def max_new_tokens(entry) -> int:
    return int(entry.decoding.get("max_new_tokens", 64))


def answers(entry, model, prompt: str, items, log=print, taxonomy=None):
    """Yield (id, Answer) for (id, image loader) pairs: local models in batches of `batch_size`
    (with every feature's score when given the `taxonomy`), endpoints with `concurrency` requests
    in flight."""
    if entry.kind == "local":
        return model.answer(items, prompt, max_new_tokens(entry), entry.batch_size, log, taxonomy=taxonomy)
    return model.answer(items, prompt, entry.concurrency, log)
