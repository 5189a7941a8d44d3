"""Local checkpoints: transformers (+ peft for adapters) with the model's own processor, or vLLM.

Why not LlamaFactory's ChatModel: with transformers 5.6 it does not pass `mm_token_type_ids`,
so Qwen3-VL silently falls back to text positions for image tokens (../shared/docs/llamafactory.md).
We build exactly what training saw instead:
  text   = LlamaFactory's `qwen3_vl_nothink` user turn around the task prompt, with `<image>`
           replaced by Qwen's vision tokens (no system prompt: that template has no default);
  image  = LlamaFactory's resize (area <= image_max_pixels, >= image_min_pixels, RGB, sides >= 28);
then the processor expands the image tokens and returns `mm_token_type_ids`, which we assert.
Decoding is greedy; batches are left-padded (checked equal to one-by-one in the tests).
"""

from __future__ import annotations

import math
import time

from fracdata.errors import FracdataError

USER_TURN = "<|im_start|>user\n{content}<|im_end|>\n<|im_start|>assistant\n"  # qwen3_vl_nothink
VISION = "<|vision_start|><|image_pad|><|vision_end|>"


def chat_text(prompt: str) -> str:
    """The exact generation prompt LlamaFactory builds for one user turn (before token expansion)."""
    return USER_TURN.format(content=prompt.replace("<image>", VISION))


def lf_preprocess(image, max_pixels: int, min_pixels: int):
    """LlamaFactory 0.9.5 Qwen2VLPlugin._preprocess_image, so inference sees training's pixels."""
    if image.width * image.height > max_pixels:
        f = math.sqrt(max_pixels / (image.width * image.height))
        image = image.resize((int(image.width * f), int(image.height * f)))
    if image.width * image.height < min_pixels:
        f = math.sqrt(min_pixels / (image.width * image.height))
        image = image.resize((int(image.width * f), int(image.height * f)))
    if image.mode != "RGB":
        image = image.convert("RGB")
    if min(image.width, image.height) < 28:
        image = image.resize((max(image.width, 28), max(image.height, 28)))
    if image.width / image.height > 200:
        image = image.resize((image.height * 180, image.height))
    if image.height / image.width > 200:
        image = image.resize((image.width, image.width * 180))
    return image


def _processor_dir(entry, path, adapter):
    """The model's own processor: the adapter folder's when training saved one there, else the base's."""
    if adapter is not None and any((adapter / f).is_file() for f in ("processor_config.json", "preprocessor_config.json")):
        return adapter
    return path


def run_local(entry, runtime: dict, path, adapter, prompt: str, loaders: list, log=print, on_result=None) -> list[dict]:
    """Answer every image (loaders: callables returning a PIL image); one result dict per image.
    `on_result(i, result)` is called after each batch (so an interrupted run keeps them)."""
    if runtime["engine"] == "vllm":
        results = _run_vllm(entry, runtime, path, adapter, prompt, loaders, log)
        for i, res in enumerate(results if on_result else []):
            on_result(i, res)
        return results
    import torch
    from transformers import AutoModelForImageTextToText, AutoProcessor

    if runtime["device"] == "cuda" and not torch.cuda.is_available():
        raise FracdataError(f"model {entry.name}: a GPU is visible but torch cannot use it: set `dtype` and CUDA_VISIBLE_DEVICES=-1 for CPU")
    t0 = time.time()
    processor = AutoProcessor.from_pretrained(_processor_dir(entry, path, adapter))
    processor.tokenizer.padding_side = "left"  # generation continues from the right edge
    model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, runtime["dtype"]))
    if adapter is not None:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    model = model.to(runtime["device"]).eval()
    log(f"  loaded {entry.name} ({runtime['engine']}, {runtime['device']}, {runtime['dtype']}) in {time.time() - t0:.1f} s")
    text = chat_text(prompt)
    pad = processor.tokenizer.pad_token_id
    max_new = int(entry.decoding.get("max_new_tokens", 64))
    results: list[dict] = []
    for start in range(0, len(loaders), entry.batch_size):
        batch = [lf_preprocess(load(), entry.image_max_pixels, entry.image_min_pixels)
                 for load in loaders[start:start + entry.batch_size]]
        enc = processor(text=[text] * len(batch), images=batch, return_tensors="pt", padding=True)
        if "mm_token_type_ids" not in enc:  # without it Qwen3-VL mis-positions image tokens
            raise FracdataError(f"model {entry.name}: its processor returned no mm_token_type_ids; "
                                "upgrade transformers (>= 5.6) or use the checkpoint's own processor")
        enc = enc.to(runtime["device"])
        t1 = time.time()
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=max_new, do_sample=False, temperature=None,
                                 top_p=None, top_k=None)
        # Latency per image = batch wall time / batch size (the batch is generated together).
        per = (time.time() - t1) / len(batch)
        new = out[:, enc["input_ids"].shape[1]:]
        texts = processor.batch_decode(new, skip_special_tokens=True)
        for i, raw in enumerate(texts):
            results.append({"raw": raw.strip(), "latency_s": round(per, 4), "error": None, "usage": {
                "prompt_tokens": int(enc["attention_mask"][i].sum()),
                "completion_tokens": int((new[i] != pad).sum()) if pad is not None else int(new.shape[1])}})
            if on_result is not None:
                on_result(len(results) - 1, results[-1])
        log(f"  {entry.name}: {len(results)}/{len(loaders)} images ({per:.3f} s/image)")
    return results


def _run_vllm(entry, runtime, path, adapter, prompt, loaders, log):  # pragma: no cover - needs a GPU + vLLM
    """vLLM path: same text and pixels; LoRA applies to the language model only (merge a
    vision-tower LoRA first with `llamafactory-cli export`)."""
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    t0 = time.time()
    llm = LLM(model=str(path), dtype=runtime["dtype"], enable_lora=adapter is not None,
              limit_mm_per_prompt={"image": 1}, seed=0)
    log(f"  loaded {entry.name} (vllm, {runtime['dtype']}) in {time.time() - t0:.1f} s")
    params = SamplingParams(temperature=0.0, max_tokens=int(entry.decoding.get("max_new_tokens", 64)))
    lora = LoRARequest("adapter", 1, str(adapter)) if adapter is not None else None
    text = chat_text(prompt)
    reqs = [{"prompt": text, "multi_modal_data": {"image": lf_preprocess(load(), entry.image_max_pixels,
                                                                         entry.image_min_pixels)}} for load in loaders]
    t1 = time.time()
    outs = llm.generate(reqs, params, lora_request=lora)
    per = (time.time() - t1) / max(1, len(reqs))  # vLLM schedules all requests together
    return [{"raw": o.outputs[0].text.strip(), "latency_s": round(per, 4), "error": None,
             "usage": {"prompt_tokens": len(o.prompt_token_ids), "completion_tokens": len(o.outputs[0].token_ids)}}
            for o in outs]
