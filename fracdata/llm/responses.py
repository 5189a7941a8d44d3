"""What an API answer holds: the text of a Responses object (or why there is none) and its token usage."""

from __future__ import annotations


def responses_output(obj: dict) -> tuple[str | None, str | None, str]:
    """A Responses API object -> (answer text, None, "") or (None, failure reason, detail).
    Reasons: content_filter, incomplete (e.g. max_output_tokens), response_failed, refusal, and
    malformed_response for a body of the wrong shape (any server may answer anything)."""
    status = obj.get("status")
    if status == "incomplete":
        why = _field(obj, "incomplete_details", "reason") or "unknown"
        return None, "content_filter" if why == "content_filter" else "incomplete", f"response incomplete: {why}"
    if status != "completed":
        return None, "response_failed", f"response status {status}: {_field(obj, 'error', 'message')}"
    output = obj.get("output")
    if not isinstance(output, list):
        return None, "malformed_response", f"response output is a JSON {type(output).__name__}, not a list"
    parts = [c for o in output if isinstance(o, dict) and o.get("type") == "message"
             for c in (o.get("content") if isinstance(o.get("content"), list) else []) if isinstance(c, dict)]
    refusals = [str(c.get("refusal") or "") for c in parts if c.get("type") == "refusal"]
    if refusals:
        return None, "refusal", refusals[0]
    return "".join(c["text"] for c in parts if c.get("type") == "output_text" and isinstance(c.get("text"), str)), None, ""


def _field(obj: dict, key: str, sub: str):
    inner = obj.get(key)
    return inner.get(sub) if isinstance(inner, dict) else None


def usage_from(obj: dict | None) -> dict[str, int] | None:
    """Responses or Chat usage block -> {input_tokens, cached_tokens, output_tokens, reasoning_tokens};
    None when there is none or it is not a block of counts."""
    if not isinstance(obj, dict) or not obj:
        return None
    if "input_tokens" in obj:
        inp, out = obj.get("input_tokens"), obj.get("output_tokens")
        cached, reasoning = _field(obj, "input_tokens_details", "cached_tokens"), _field(obj, "output_tokens_details", "reasoning_tokens")
    else:
        inp, out = obj.get("prompt_tokens"), obj.get("completion_tokens")
        cached = _field(obj, "prompt_tokens_details", "cached_tokens")
        reasoning = _field(obj, "completion_tokens_details", "reasoning_tokens")
    counts = {"input_tokens": inp, "cached_tokens": cached, "output_tokens": out, "reasoning_tokens": reasoning}
    if not all(v is None or (isinstance(v, int) and not isinstance(v, bool) and v >= 0) for v in counts.values()):
        return None
    return {k: int(v or 0) for k, v in counts.items()}

