"""The specialist: a model entry (local checkpoint or OpenAI-compatible endpoint) asked the
benchmark's prompt for one image, answered in the training format, parsed by the benchmark's
parser, with per-feature confidence from token log-probabilities where the backend gives them.

The model is opened exactly as fracbench scores it (fracdata.inference's open_model:
LlamaFactory's chat text and resize, the model's own processor with `mm_token_type_ids`, or the
same Chat Completions request), asking for log-probabilities too: local checkpoints log-softmax
their raw generation logits; endpoints get `logprobs: true`, and a server that refuses it
(OpenAI's reasoning models answer 400) is asked again without, and the result says so. An
endpoint answer cut off (`finish_reason` length / content_filter) or empty is a specialist
failure, as in fracbench. The model is loaded once per process, so watch mode and the server
pay the load once.
"""

from __future__ import annotations

import time

from fracdata.errors import FracdataError

DEFAULT_TASK = "fractography-v1"


class Specialist:
    def __init__(self, entry, taxonomy, task: str = DEFAULT_TASK):
        from fracdata.inference.task import load_task, prompt_text

        self.entry, self.taxonomy = entry, taxonomy
        t, _ = load_task(task)
        self.prompt = prompt_text(t, entry.prompt or t.default_prompt)
        self.endpoint = entry.base_url or entry.path  # until loaded: what the entry names
        self._model = None

    def load(self, log=print) -> "Specialist":
        from fracdata.inference.entry import open_model
        from fracdata.llm import missing_key

        e = self.entry
        var = missing_key(e.api_key_env)
        if var:
            raise FracdataError(f"specialist {e.name} ({e.base_url}) needs its key: set {var}")
        self._model = open_model(e, log, who="specialist")
        self.endpoint = self._model.where
        return self

    def analyse(self, image) -> dict:
        """SpecialistResult fields for one PIL image; raises FracdataError when the model fails."""
        from fracdata.llm import usage_from

        if self._model is None:
            self.load()
        t0 = time.time()
        a = self._model.ask(image, self.prompt, logprobs=True)
        if a.error:
            raise FracdataError(f"specialist {self.entry.name} at {self.endpoint} failed: {a.error}")
        source = self._model.LOGPROB_SOURCE if a.tokens is not None else "none"
        return self._result(a, usage_from(a.usage), source, time.time() - t0)

    def _result(self, a, usage, source, latency) -> dict:
        from fracdata.analyze.confidence import feature_confidence
        from fracdata.answer import parse_answer

        parsed = parse_answer(a.raw, self.taxonomy)
        note = a.note
        conf = feature_confidence(a.tokens, a.logprobs, self.taxonomy) if a.tokens is not None else {}
        if a.tokens is not None and any(f not in conf for f in parsed.labels):
            note = "some features were not found in a 'Features:' term of the answer: their confidence is null"
        feats = [{"id": f, "name": self.taxonomy.by_id[f].name, "confidence": conf.get(f)} for f in parsed.labels]
        return {"model": self.entry.name, "kind": self.entry.kind, "endpoint": str(self.endpoint), "raw": a.raw,
                "status": parsed.status, "features": feats, "unknown": parsed.unknown,
                "confidence_source": source, "confidence_note": note,
                "answer_logprob": round(sum(a.logprobs), 6) if a.tokens is not None else None,
                "latency_s": round(latency, 4), "usage": usage, "response_model": a.response_model}
