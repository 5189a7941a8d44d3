"""The generalist: a general model (default GPT-5.5) through the Responses API with structured
output, given the image, the specialist's features as evidence it must cite, and optional context.

The request reuses the labeller's image encoding (JPEG, <= 1536 px, 16-bit SEM frames
stretched) and cost table; the answer schema is `GeneralistAnswer`, sent as a strict JSON
schema (the SDK's own strict converter) and re-validated here, so a server that ignores the
schema is held to the same rules. Any failure (HTTP error after the SDK's retries, refusal,
content filter, incomplete answer, invalid JSON, a body of the wrong shape, a report holding text
UTF-8 cannot encode) is returned as a reason, never raised: the caller then keeps the
specialist's result alone and flags it. The answer text is redacted of the entry's key on arrival.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import lru_cache

from fracdata.answer import template  # jinja2 loads on first render
from fracdata.label.prompt import UNTRUSTED_TAG  # the labeller's rule for untrusted text

DEFAULT_MAX_OUTPUT_TOKENS = 16000  # reasoning + report; gpt-5.x at medium effort thinks for thousands
MAX_CONTEXT_CHARS = 8000


@lru_cache(maxsize=1)
def answer_schema() -> dict:
    from openai.lib._pydantic import to_strict_json_schema

    from fracdata.analyze.schema import GeneralistAnswer

    return to_strict_json_schema(GeneralistAnswer)


def instructions(taxonomy) -> str:
    return template("analyze_instructions.j2").render(taxonomy=taxonomy)


def input_text(specialist: dict, context: str | None) -> str:
    ctx = json.dumps({"context": UNTRUSTED_TAG.sub("[tag removed]", context or "")}, ensure_ascii=False)
    return template("analyze_input.j2").render(specialist=specialist["model"], features=specialist["features"],
                                                context_json=ctx)


@dataclass
class Outcome:
    report: dict | None = None  # GeneralistAnswer as a dict when ok
    reason: str | None = None  # failure reason
    detail: str = ""
    usage: dict | None = None
    request_id: str | None = None
    response_model: str | None = None
    latency_s: float = 0.0


class Generalist:
    def __init__(self, entry, taxonomy, max_output_tokens: int | None = None):
        from fracdata.errors import FracdataError

        self.entry, self.taxonomy = entry, taxonomy
        dec = dict(entry.decoding)
        bad = set(dec) - {"max_completion_tokens", "max_tokens", "reasoning_effort", "temperature", "top_p", "extra_body"}
        if bad:
            raise FracdataError(f"generalist {entry.name}: decoding keys {sorted(bad)} have no Responses API equivalent")
        # The entry's max_completion_tokens sizes a one-line benchmark answer; a report needs more.
        self.max_output_tokens = max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS
        self.effort = dec.get("reasoning_effort")
        self.sampling = {k: dec[k] for k in ("temperature", "top_p") if k in dec}
        self.extra_body = dec.get("extra_body")
        self.instructions = instructions(taxonomy)
        self._client = None

    def describe(self) -> str:
        e = self.entry
        return (f"generalist {e.name} ({e.model}, Responses API, {e.base_url}, max_output_tokens "
                f"{self.max_output_tokens:,}" + (f", effort {self.effort}" if self.effort else "") + ")")

    def client(self):
        if self._client is None:
            from fracdata.llm.clients import client

            e = self.entry
            self._client = client(e.base_url, e.api_key_env, max_retries=e.max_retries, timeout=e.timeout_s)
        return self._client

    def body(self, image_source, specialist: dict, context: str | None) -> tuple[dict, int]:
        """(SDK keyword arguments, upper bound on its input tokens: fracdata.llm.input_bound) for one image."""
        from fracdata.analyze.schema import REPORT_SCHEMA_NAME
        from fracdata.label.prompt import Params, encode_image
        from fracdata.llm.prices import input_bound

        url, size = encode_image(image_source, Params())
        text = input_text(specialist, context)
        body = {"model": self.entry.model, "instructions": self.instructions,
                "input": [{"role": "user", "content": [{"type": "input_image", "image_url": url, "detail": "high"},
                                                       {"type": "input_text", "text": text}]}],
                "max_output_tokens": self.max_output_tokens,
                "text": {"format": {"type": "json_schema", "name": REPORT_SCHEMA_NAME, "schema": answer_schema(),
                                    "strict": True}},
                "store": False, **self.sampling}
        if self.effort:
            body["reasoning"] = {"effort": self.effort}
        if self.extra_body:
            body["extra_body"] = self.extra_body
        return body, input_bound(body, [size])

    def ask(self, body: dict) -> Outcome:
        import openai

        from fracdata.analyze.schema import GeneralistAnswer
        from fracdata.label.schema import AnswerError, extract_json, validate_answer
        from fracdata.llm.clients import sdk_error
        from fracdata.llm.responses import responses_output, usage_from

        from fracdata.llm.clients import redact
        from fracdata.untrusted import REASON as UNENCODABLE, loads, text_problem

        out = Outcome()
        t0 = time.time()
        try:
            raw = self.client().responses.with_raw_response.create(**body)
            obj = loads(raw.text)
            out.request_id = raw.headers.get("x-request-id")
        except openai.APIStatusError as e:  # after the SDK's retries
            out.request_id = e.request_id
            return self._fail(out, t0, "api_error", sdk_error(e, self.entry.api_key_env))
        except openai.OpenAIError as e:  # connection refused, timeout
            return self._fail(out, t0, "connection_error", sdk_error(e, self.entry.api_key_env))
        except json.JSONDecodeError as e:
            return self._fail(out, t0, "malformed_response", f"unreadable response body: {e}")
        out.latency_s = round(time.time() - t0, 4)
        if not isinstance(obj, dict):
            return self._fail(out, None, "malformed_response", f"response body is a JSON {type(obj).__name__}, not an object")
        model = obj.get("model")
        out.usage = usage_from(obj.get("usage"))
        out.response_model = redact(model, self.entry.api_key_env) if isinstance(model, str) else None
        text, reason, detail = responses_output(obj)
        if reason is not None:
            return self._fail(out, None, reason, detail)
        try:
            report = validate_answer(extract_json(redact(text, self.entry.api_key_env)), GeneralistAnswer).model_dump()
        except AnswerError as e:
            return self._fail(out, None, e.reason, e.detail)
        problem = text_problem({"report": report, "model": out.response_model})
        if problem is not None:  # it could never be written
            out.response_model = None
            return self._fail(out, None, UNENCODABLE, problem)
        out.report = report
        return out

    def _fail(self, out: Outcome, t0: float | None, reason: str, detail: str) -> Outcome:
        from fracdata.llm.clients import redact

        if t0 is not None:
            out.latency_s = round(time.time() - t0, 4)
        from fracdata.untrusted import escape

        # a server may echo the key, or send text UTF-8 cannot encode: the flag must still be written
        out.reason, out.detail = reason, escape(redact(detail, self.entry.api_key_env)[:500])
        return out
