"""The specialist: a fracbench model entry (local checkpoint or OpenAI-compatible endpoint) asked
the benchmark's prompt for one image, answered in the training format, parsed by the benchmark's
parser, with per-feature confidence from token log-probabilities where the backend gives them.

Local checkpoints reuse fracbench.local's exact inputs (LlamaFactory's chat text and image
resize, the model's own processor with `mm_token_type_ids`) and add `output_logits` to greedy
generation. Endpoints get `logprobs: true`; a server that refuses it (OpenAI's reasoning
models answer 400) is asked again without, and the result says so. The model is loaded once
per process, so watch mode and the server pay the load once.
"""

from __future__ import annotations

import time

from fracdata.errors import FracdataError

DEFAULT_TASK = "fractography-v1"


class Specialist:
    def __init__(self, entry, taxonomy, task: str = DEFAULT_TASK):
        from fracbench.config import load_task, prompt_text

        self.entry, self.taxonomy = entry, taxonomy
        t, _ = load_task(task)
        self.prompt = prompt_text(t, entry.prompt or t.default_prompt)
        self.endpoint = entry.base_url if entry.kind == "openai-compatible" else entry.path
        self._model = None
        self._client = None

    # -- setup --------------------------------------------------------------------------------
    def load(self, log=print) -> "Specialist":
        e = self.entry
        if e.kind == "openai-compatible":
            from fracbench.api import make_client, missing_key

            var = missing_key(e)
            if var:
                raise FracdataError(f"specialist {e.name} ({e.base_url}) needs its key: set {var}")
            self._client = make_client(e)
            return self
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        from fracbench.cache import local_folder, resolved_runtime
        from fracbench.local import _processor_dir

        path = local_folder(e.path, "path", e.name)
        adapter = local_folder(e.adapter, "adapter", e.name) if e.adapter else None
        self.endpoint = str(path)
        rt = resolved_runtime(e)
        t0 = time.time()
        processor = AutoProcessor.from_pretrained(_processor_dir(e, path, adapter))
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, rt["dtype"]))
        if adapter is not None:
            from peft import PeftModel

            model = PeftModel.from_pretrained(model, adapter)
        self._model = (model.to(rt["device"]).eval(), processor, rt["device"])
        log(f"specialist {e.name}: loaded {path} (transformers, {rt['device']}, {rt['dtype']}) in {time.time() - t0:.1f} s")
        return self

    # -- one image ----------------------------------------------------------------------------
    def analyse(self, image) -> dict:
        """SpecialistResult fields (+ "_usage_for_cost") for one PIL image."""
        if self._model is None and self._client is None:
            self.load()
        t0 = time.time()
        if self.entry.kind == "local":
            raw, tokens, logprobs, usage, note, response_model = self._local(image)
            source = "local-generate-scores"
        else:
            raw, tokens, logprobs, usage, note, response_model = self._api(image)
            source = "chat-logprobs" if tokens is not None else "none"
        return self._result(raw, tokens, logprobs, usage, note, response_model, source, time.time() - t0)

    def _result(self, raw, tokens, logprobs, usage, note, response_model, source, latency) -> dict:
        from fracdata.analyze.confidence import feature_confidence
        from fracdata.answer import parse_answer

        parsed = parse_answer(raw, self.taxonomy)
        conf = feature_confidence(tokens, logprobs, self.taxonomy) if tokens is not None else {}
        if tokens is not None and any(f not in conf for f in parsed.labels):
            note = "some features were not found in a 'Features:' term of the answer: their confidence is null"
        feats = [{"id": f, "name": self.taxonomy.by_id[f].name, "confidence": conf.get(f)} for f in parsed.labels]
        return {"model": self.entry.name, "kind": self.entry.kind, "endpoint": str(self.endpoint), "raw": raw,
                "status": parsed.status, "features": feats, "unknown": parsed.unknown,
                "confidence_source": source, "confidence_note": note,
                "answer_logprob": round(sum(logprobs), 6) if tokens is not None else None, "latency_s": round(latency, 4),
                "usage": usage, "response_model": response_model}

    def _local(self, image):
        import torch

        from fracbench.local import chat_text, lf_preprocess

        model, processor, device = self._model
        e = self.entry
        img = lf_preprocess(image, e.image_max_pixels, e.image_min_pixels)
        enc = processor(text=[chat_text(self.prompt)], images=[img], return_tensors="pt")
        if "mm_token_type_ids" not in enc:  # without it Qwen3-VL mis-positions image tokens
            raise FracdataError(f"specialist {e.name} ({self.endpoint}): its processor returned no mm_token_type_ids; "
                                "upgrade transformers (>= 5.6) or use the checkpoint's own processor")
        enc = enc.to(device)
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=int(e.decoding.get("max_new_tokens", 64)), do_sample=False,
                                 temperature=None, top_p=None, top_k=None, output_logits=True,
                                 return_dict_in_generate=True)
        new = out.sequences[0, enc["input_ids"].shape[1]:].tolist()
        # Raw logits (before any processor), log-softmaxed: the model's own token probabilities.
        logprobs = [float(torch.log_softmax(step[0].float(), -1)[tok]) for step, tok in zip(out.logits, new)]
        # Token pieces by decoding growing prefixes: byte-level BPE pieces are not valid text alone.
        tokens, prev = [], ""
        for k in range(1, len(new) + 1):
            text = processor.tokenizer.decode(new[:k], skip_special_tokens=True)
            tokens.append(text[len(prev):] if text.startswith(prev) else "")
            prev = text
        raw = prev.strip()
        usage = {"input_tokens": int(enc["input_ids"].shape[1]), "cached_tokens": 0,
                 "output_tokens": len(new), "reasoning_tokens": 0}
        return raw, tokens, logprobs, usage, None, None

    def _api(self, image):
        import openai

        from fracbench.api import content_parts, data_url, short_error
        from fracdata.llm import error_message
        from fracdata.llm import usage_from

        e = self.entry
        decoding = dict(e.decoding)
        extra_body = decoding.pop("extra_body", None)
        messages = [{"role": "user", "content": content_parts(self.prompt, data_url(image))}]
        note = None
        try:
            try:
                resp = self._client.chat.completions.create(model=e.model, messages=messages, logprobs=True,
                                                            extra_body=extra_body, **decoding)
            except openai.BadRequestError as err:
                if "logprob" not in str(err).lower():
                    raise
                note = "the endpoint refused logprobs (HTTP 400): no confidence"
                resp = self._client.chat.completions.create(model=e.model, messages=messages,
                                                            extra_body=extra_body, **decoding)
        except openai.APIStatusError as err:  # after the SDK's retries
            raise FracdataError(f"specialist {e.name} at {e.base_url} failed: HTTP {err.status_code}: "
                                f"{short_error(error_message(err), e)}") from None
        except openai.OpenAIError as err:  # connection refused, timeout
            raise FracdataError(f"specialist {e.name} at {e.base_url} failed: {type(err).__name__}: "
                                f"{short_error(str(err), e)}") from None
        if not resp.choices:
            raise FracdataError(f"specialist {e.name} at {e.base_url} failed: the response has no choices")
        choice = resp.choices[0]
        raw = (choice.message.content or "").strip()
        usage = usage_from(resp.usage.model_dump()) if resp.usage else None
        content = choice.logprobs.content if choice.logprobs and choice.logprobs.content else None
        tokens = logprobs = None
        if content is not None:
            tokens, logprobs = [c.token for c in content], [float(c.logprob) for c in content]
            if "".join(tokens).strip() != raw:
                tokens = logprobs = None
                note = "the endpoint's logprob tokens do not spell its answer: no confidence"
        elif note is None:
            note = "the endpoint returned no logprobs: no confidence"
        return raw, tokens, logprobs, usage, note, resp.model

