"""Is an adapter applied at all? Ask a few probe images of the base model and of the adapter.

A LoRA adapter whose weight names do not match the model's modules can load without an error and
change nothing: peft 0.18 then only warns "Found missing adapter keys" (and leaves each LoRA B
at its initial zeros: base + 0), vLLM logs nothing (vllm issues 34186, 48019), and a benchmark
reports the base model's numbers under the adapter's name.

Local (a LocalModel with a peft adapter): one load, the adapter switched off with peft's
`disable_adapter()` for the base; per probe, the greedy answer and the next-token logits after
the prompt. Inert = the same answers and logits within LOGIT_TOLERANCE on every probe (an
unapplied LoRA adds exact zeros, so its logits are bit-identical; a trained one moves them by
far more: a 6-step smoke adapter on the tiny model by > 1e-3).
Served (two names on one OpenAI-compatible server, e.g. vLLM's base and `--lora-modules` name):
per probe both answers (greedy) and, when the server gives them, the answer tokens'
log-probabilities. Inert = the same answers on every probe and, where logprobs came back for
both, logprobs within LOGPROB_TOLERANCE (looser: a server's batched kernels vary them slightly).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from fracdata.errors import FracdataError

LOGIT_TOLERANCE = 1e-5
LOGPROB_TOLERANCE = 1e-2


@dataclass
class Probe:
    probes: int
    same_answers: int
    answers: list[tuple[str, str]]  # (base, adapter), one per probe
    max_logit_diff: float | None = None  # local
    max_logprob_diff: float | None = None  # served, when both gave logprobs for every probe
    warnings: list[str] = field(default_factory=list)

    @property
    def inert(self) -> bool:
        if self.same_answers < self.probes:
            return False
        if self.max_logit_diff is not None:
            return self.max_logit_diff <= LOGIT_TOLERANCE
        if self.max_logprob_diff is not None:
            return self.max_logprob_diff <= LOGPROB_TOLERANCE
        return True

    def record(self) -> dict:
        return {**asdict(self), "answers": [list(a) for a in self.answers], "inert": self.inert}

    def describe(self) -> str:
        """One clause: what was compared and found."""
        how = [f"{self.same_answers}/{self.probes} probe answers identical"]
        if self.max_logit_diff is not None:
            how.append(f"next-token logits differ by at most {self.max_logit_diff:.3g} (tolerance {LOGIT_TOLERANCE:g})")
        elif self.max_logprob_diff is not None:
            how.append(f"answer logprobs differ by at most {self.max_logprob_diff:.3g} (tolerance {LOGPROB_TOLERANCE:g})")
        return ", ".join(how)


def probe_local(model, images: list, prompt: str) -> Probe:
    """Base vs adapter of one loaded LocalModel whose `model` is a peft PeftModel."""
    import torch

    from fracdata.train.qwen import chat_text, lf_preprocess

    peft = model.model
    if not hasattr(peft, "disable_adapter"):
        raise FracdataError(f"{model.name}: no adapter loaded, nothing to probe")
    batch = [lf_preprocess(im, *model.pixels) for im in images]
    enc = model.processor(text=[chat_text(prompt)] * len(batch), images=batch, return_tensors="pt", padding=True)
    enc = enc.to(model.device)
    with torch.inference_mode():
        # left padding: position -1 is every row's last prompt token, where the answer starts
        tuned = peft(**enc).logits[:, -1, :].float()
        with peft.disable_adapter():
            base = peft(**enc).logits[:, -1, :].float()
            base_answers = model.generate(images, prompt)
    tuned_answers = model.generate(images, prompt)
    pairs = [(b.raw, t.raw) for b, t in zip(base_answers, tuned_answers, strict=True)]
    return Probe(len(pairs), sum(b == t for b, t in pairs), pairs, max_logit_diff=float((tuned - base).abs().max()))


def probe_served(adapter, base, images: list, prompt: str) -> Probe:
    """Base vs adapter served by one server: two Endpoints (fracdata.inference.endpoint)."""
    pairs, diffs = [], []
    for image in images:
        b, t = base.ask(image, prompt, logprobs=True), adapter.ask(image, prompt, logprobs=True)
        for who, a in (("base " + base.model, b), ("adapter " + adapter.model, t)):
            if a.error:
                raise FracdataError(f"{adapter.name}: the probe of the {who} failed ({a.error}), so it cannot be checked "
                                    "that the adapter is applied")
        pairs.append((b.raw, t.raw))
        if b.raw == t.raw and b.logprobs is not None and t.logprobs is not None and len(b.logprobs) == len(t.logprobs):
            diffs.append(max((abs(x - y) for x, y in zip(b.logprobs, t.logprobs)), default=0.0))
        else:
            diffs.append(None)
    same = sum(b == t for b, t in pairs)
    full = same == len(pairs) and all(d is not None for d in diffs)
    return Probe(len(pairs), same, pairs, max_logprob_diff=max(diffs) if full and diffs else None)
