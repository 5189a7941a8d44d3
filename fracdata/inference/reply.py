"""What a backend returns for one image: the answer text, or why there is none, with its cost."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass
class Answer:
    raw: str = ""  # the answer text, stripped
    error: str | None = None  # set: the call failed (or its answer is unusable); never cached
    latency_s: float | None = None
    usage: dict | None = None  # {"prompt_tokens", "completion_tokens", ...} as the backend counts them
    finish_reason: str | None = None  # endpoints only
    response_model: str | None = None  # endpoints only
    tokens: list[str] | None = None  # answer pieces ("".join(tokens) == the unstripped answer), when asked
    logprobs: list[float] | None = None  # their natural-log probabilities
    note: str | None = None  # why tokens/logprobs are missing though asked for
    feature_logprobs: dict[str, float] | None = None  # {taxonomy id: log p_f} (feature_probs.py), local models

    def record(self) -> dict:
        """The fields a prediction cache keeps (no token lists; None left out; the 53 feature scores kept)."""
        return {k: v for k, v in asdict(self).items() if v is not None and k not in ("tokens", "logprobs", "note")}
