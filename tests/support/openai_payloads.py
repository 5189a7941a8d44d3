"""Payloads of the OpenAI API stub: faults, default answers, Responses / Chat response bodies.

Split from openai_server.py (the HTTP side); import everything from there.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

FAULT_KINDS = {"429", "500", "400_logprobs", "slow", "trickle", "bad_body", "malformed_json", "schema_invalid",
               "refusal", "incomplete", "length", "content_filter"}
# Fixed default usage: with fixed numbers a cost test can assert exact dollars.
DEFAULT_USAGE = {"input": 1000, "cached": 200, "output": 300, "reasoning": 200}


@dataclass
class Fault:
    kind: str
    match: Any = None  # None | int (request number) | str (body substring) | callable(body)
    times: int | None = 1  # None = every matching request
    retry_after: float = 1.0  # 429: seconds in the Retry-After header
    delay: float = 5.0  # slow: seconds before answering; trickle: seconds between the body's bytes

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")

    def matches(self, n: int, raw: str, body: dict) -> bool:
        if self.times is not None and self.times <= 0:
            return False
        if self.match is None:
            return True
        if isinstance(self.match, bool):
            raise TypeError("Fault.match must not be a bool")
        if isinstance(self.match, int):
            return n == self.match
        if isinstance(self.match, str):
            return self.match in raw
        return bool(self.match(body))


def text_of(body: dict) -> str:
    """All text of a Responses or Chat request (instructions, system, user text), images left out."""
    parts: list[str] = []

    def walk(x):
        if isinstance(x, str):
            parts.append(x)
        elif isinstance(x, list):
            for item in x:
                walk(item)
        elif isinstance(x, dict):
            if x.get("type") in ("input_text", "text", "output_text"):
                parts.append(str(x.get("text", "")))
            elif "content" in x:
                walk(x["content"])

    walk(body.get("instructions") or "")
    walk(body.get("input") or [])
    walk(body.get("messages") or [])
    return "\n".join(p for p in parts if p)


def request_schema(body: dict) -> dict | None:
    fmt = (body.get("text") or {}).get("format") or {}
    if fmt.get("type") == "json_schema":
        return fmt.get("schema")
    rf = body.get("response_format") or {}
    if rf.get("type") == "json_schema":
        return (rf.get("json_schema") or {}).get("schema")
    return None


def minimal_instance(schema: dict, root: dict | None = None) -> Any:
    """The smallest value a JSON schema accepts (first enum value, empty arrays, nulls allowed)."""
    root = root or schema
    if "$ref" in schema:
        node = root
        for part in schema["$ref"].lstrip("#/").split("/"):
            node = node[part]
        return minimal_instance(node, root)
    for key in ("anyOf", "oneOf"):
        if key in schema:
            options = schema[key]
            null = [o for o in options if o.get("type") == "null"]
            return None if null else minimal_instance(options[0], root)
    if "enum" in schema:
        return schema["enum"][0]
    if "const" in schema:
        return schema["const"]
    typ = schema.get("type")
    if isinstance(typ, list):
        if "null" in typ:
            return None
        typ = typ[0]
    if typ == "object":
        props = schema.get("properties", {})
        return {k: minimal_instance(props[k], root) for k in schema.get("required", list(props))}
    if typ == "array":
        return [minimal_instance(schema["items"], root) for _ in range(schema.get("minItems", 0))]
    return {"string": "", "integer": 0, "number": 0, "boolean": False, "null": None}[typ]


def default_responder(kind: str, body: dict) -> dict | str:
    schema = request_schema(body)
    return minimal_instance(schema) if schema is not None else "Features: none"


def error_body(message: str, code: str) -> dict:
    return {"error": {"message": message, "type": code, "param": None, "code": code}}


def usage_body(u: dict, chat: bool) -> dict:
    if chat:
        return {"prompt_tokens": u["input"], "completion_tokens": u["output"], "total_tokens": u["input"] + u["output"],
                "prompt_tokens_details": {"cached_tokens": u["cached"]},
                "completion_tokens_details": {"reasoning_tokens": u["reasoning"]}}
    return {"input_tokens": u["input"], "input_tokens_details": {"cached_tokens": u["cached"]},
            "output_tokens": u["output"], "output_tokens_details": {"reasoning_tokens": u["reasoning"]},
            "total_tokens": u["input"] + u["output"]}


def response_body(n: int, model: str, text: str, fault: str | None, usage: dict) -> dict:
    content = ({"type": "refusal", "refusal": "I'm sorry, I can't help with that."} if fault == "refusal"
               else {"type": "output_text", "text": text, "annotations": []})
    reason = {"incomplete": "max_output_tokens", "length": "max_output_tokens", "content_filter": "content_filter"}.get(fault)
    output = [{"type": "reasoning", "id": f"rs_{n:06d}", "summary": []}]
    if fault != "content_filter":
        output.append({"type": "message", "id": f"msg_{n:06d}", "role": "assistant",
                       "status": "incomplete" if reason else "completed", "content": [content]})
    return {"id": f"resp_{n:06d}", "object": "response", "created_at": int(time.time()), "model": model,
            "status": "incomplete" if reason else "completed",
            "incomplete_details": {"reason": reason} if reason else None, "error": None, "output": output,
            "parallel_tool_calls": True, "tool_choice": "auto", "tools": [], "usage": usage_body(usage, chat=False)}


def chat_body(n: int, model: str, text: str, fault: str | None, usage: dict) -> dict:
    finish = {"incomplete": "length", "length": "length", "content_filter": "content_filter"}.get(fault, "stop")
    message = {"role": "assistant", "content": None if fault in ("refusal", "content_filter") else text,
               "refusal": "I'm sorry, I can't help with that." if fault == "refusal" else None}
    return {"id": f"chatcmpl-{n:06d}", "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [{"index": 0, "message": message, "finish_reason": finish, "logprobs": None}],
            "usage": usage_body(usage, chat=True)}
