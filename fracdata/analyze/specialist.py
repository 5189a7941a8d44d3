"""The specialist: a model entry (local checkpoint or OpenAI-compatible endpoint) asked the
benchmark's prompt for one image, answered in the training format, parsed by the benchmark's
parser, with a probability for every taxonomy feature where the backend gives one.

The model is opened exactly as fracbench scores it (fracdata.inference's open_model:
LlamaFactory's chat text and resize, the model's own processor with `mm_token_type_ids`, or the
same Chat Completions request). A local checkpoint also scores every taxonomy feature
(fracdata/inference/feature_probs.py), mapped to calibrated probabilities by the calibration.json
beside it (`fracdata calibrate`; without one the scores are reported as uncalibrated); an
endpoint gives none (decide.py then asks for a person). An endpoint answer cut off
(`finish_reason` length / content_filter) or empty is a specialist failure, as in fracbench.
The model and its calibration are loaded once per process, so watch mode and the server pay the
load once.
"""

from __future__ import annotations

import time

from fracdata.errors import FracdataError

DEFAULT_TASK = "fractography-v1"


class Specialist:
    def __init__(self, entry, taxonomy, task: str = DEFAULT_TASK, review_threshold: float = 0.9):
        from fracdata.inference.task import load_task, prompt_text

        from fracdata.analyze.decide import check_threshold

        self.entry, self.taxonomy, self.threshold = entry, taxonomy, check_threshold(review_threshold)
        self.calibration, self.calibration_file = None, None
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
        if e.kind == "local":
            import hashlib

            from fracdata.inference.calibration import calibration_path, load_calibration

            self._model.score_features(self.taxonomy)
            self.calibration_file = calibration_path(self._model.path, self._model.adapter)
            self.calibration = load_calibration(self.calibration_file, self.taxonomy,
                                                hashlib.sha256(self.prompt.encode()).hexdigest())
            log(f"specialist {e.name}: " + (f"calibrated probabilities from {self.calibration_file} ("
                                           f"{self.calibration.describe()})" if self.calibration else
                                           f"no {self.calibration_file}: uncalibrated probabilities (fit one with "
                                           f"fracdata calibrate --model {e.name} --dataset-dir DIR)"))
        return self

    def analyse(self, image) -> dict:
        """SpecialistResult fields for one PIL image; raises FracdataError when the model fails."""
        from fracdata.llm import usage_from

        if self._model is None:
            self.load()
        t0 = time.time()
        a = self._model.ask(image, self.prompt)  # a local checkpoint's answer carries every feature's score
        if a.error:
            raise FracdataError(f"specialist {self.entry.name} at {self.endpoint} failed: {a.error}")
        return self._result(a, usage_from(a.usage), time.time() - t0)

    def _result(self, a, usage, latency) -> dict:
        """SpecialistResult fields, with `review` (decide.review) riding along for the Analysis."""
        from fracdata.analyze.decide import feature_probabilities, review
        from fracdata.answer import parse_answer

        parsed = parse_answer(a.raw, self.taxonomy)
        probs, kind, note, cal = None, "none", None, None
        if a.feature_logprobs is not None:
            calibrated = self.calibration.apply(a.feature_logprobs) if self.calibration else None
            probs = feature_probabilities(a.feature_logprobs, calibrated, parsed.labels, self.taxonomy, self.threshold)
            kind = "calibrated" if calibrated is not None else "uncalibrated"
            if self.calibration is not None:
                cal = {"file": str(self.calibration_file), "method": self.calibration.method,
                       "fitted_on": self.calibration.describe()}
            else:
                note = f"no calibration.json beside the checkpoint ({self.calibration_file}): the model's own scores"
        else:
            note = "an endpoint specialist gives no per-feature probabilities"
        by_id = {x["id"]: x["probability"] for x in probs or []}
        feats = [{"id": f, "name": self.taxonomy.by_id[f].name, "probability": by_id.get(f)} for f in parsed.labels]
        return {"model": self.entry.name, "kind": self.entry.kind, "endpoint": str(self.endpoint), "raw": a.raw,
                "status": parsed.status, "features": feats, "unknown": parsed.unknown,
                "probabilities": probs, "probability_kind": kind, "probability_note": note, "calibration": cal,
                "latency_s": round(latency, 4), "usage": usage, "response_model": a.response_model,
                "review": review(probs, kind, self.threshold)}
