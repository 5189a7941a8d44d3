"""One labelling call through the real `openai` SDK, retried where retrying can help, and classified.

Transient errors (429, 5xx, timeouts, dropped connections, an unreadable body) are retried in
the run: a 429 waits its Retry-After (and pauses the other workers), the rest back off
exponentially with jitter. Everything else is an answer-level failure that is not retried in
the run but recorded with its reason and asked again next run: refusal, content_filter,
length / incomplete, empty_answer, malformed_json, schema_invalid, malformed_response (a body of
the wrong shape), unencodable_text (an answer holding text UTF-8 cannot encode, e.g. a
`\\ud800` escape: it could never be written), api_error (other 4xx).
Answer text is redacted as it arrives (fracdata.llm.redact): a key the server echoes back inside a
successful answer never reaches the cache or the labels.
The SDK's own retries are off (max_retries=0) so that every attempt passes the rate limiter.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field

from fracdata.llm.ratelimit import RateLimiter, backoff_s
from fracdata.label.schema import AnswerError, extract_json, label_fields, validate_answer
from fracdata.llm.clients import error_message, redact
from fracdata.llm.responses import responses_output, usage_from
from fracdata.untrusted import REASON as UNENCODABLE, escape, loads, text_problem


@dataclass
class Outcome:
    ok: bool
    fields: dict | None = None  # LabelRecord fields when ok
    reason: str | None = None  # failure reason when not ok
    detail: str = ""
    usage: dict | None = None
    request_id: str | None = None
    response_model: str | None = None
    attempts: int = 0
    retries: dict = field(default_factory=dict)  # reason -> retries made after an attempt failed for it
    redacted: bool = False  # the answer held the key (now "***")
    answered: bool = False  # a 200 answer came back: it was billed, even if it fails here

    def fail(self, reason: str, detail: str) -> "Outcome":
        self.ok, self.reason, self.detail = False, reason, redact(detail)[:500]
        return self


def classify(kind: str, obj: dict, prompter, out: Outcome) -> Outcome:
    """Turn a Responses or Chat Completions JSON object into a label or a failure with its reason."""
    out.answered = True
    out.usage = usage_from(obj.get("usage"))
    model = obj.get("model")
    out.response_model = escape(redact(model)) if isinstance(model, str) else None
    if kind == "responses":
        text, reason, detail = responses_output(obj)
        if reason is not None:
            return out.fail(reason, detail)
    else:
        choices = obj.get("choices")
        if not choices or not isinstance(choices, list) or not isinstance(choices[0], dict):
            return out.fail("empty_answer" if not choices else "malformed_response", "no choices in the completion"
                            if not choices else "choices is not a list of objects")
        finish, msg = choices[0].get("finish_reason"), choices[0].get("message") or {}
        if not isinstance(msg, dict):
            return out.fail("malformed_response", f"choices[0].message is a JSON {type(msg).__name__}, not an object")
        if finish in ("length", "content_filter"):
            return out.fail(finish, f"finish_reason {finish}")
        if msg.get("refusal"):
            return out.fail("refusal", str(msg["refusal"]))
        text = msg.get("content") or ""
        if not isinstance(text, str):
            return out.fail("malformed_response", f"choices[0].message.content is a JSON {type(text).__name__}")
    redacted = redact(text)
    out.redacted = redacted != text
    try:
        answer = validate_answer(extract_json(redacted), prompter.model)
    except AnswerError as e:
        return out.fail(e.reason, e.detail)
    fields = label_fields(answer, prompter.taxonomy)
    problem = text_problem(fields)
    if problem is not None:
        return out.fail(UNENCODABLE, f"the answer's {problem}")
    out.ok, out.fields = True, fields
    return out


async def call(client, api: str, body: dict, est_tokens: int, prompter, limiter: RateLimiter,
               max_retries: int = 5, backoff_base: float = 1.0) -> Outcome:
    import openai

    # with_raw_response: the SDK sends the request and raises its typed errors as usual, but we
    # read the JSON ourselves; the same `classify` then reads batch output lines too.
    create = (client.responses if api == "responses" else client.chat.completions).with_raw_response.create
    out = Outcome(ok=False)
    for attempt in range(max_retries + 1):
        await limiter.acquire(est_tokens)
        out.attempts = attempt + 1
        delay = backoff_s(attempt, backoff_base)
        try:
            raw = await create(**body)
            obj = loads(raw.text)
        except openai.RateLimitError as e:
            retry_after = _retry_after(e.response)
            if retry_after is not None:
                delay = retry_after
                limiter.cool_down(retry_after)
            reason, detail, rid = "rate_limited", f"HTTP 429: {error_message(e)}", e.request_id
        except openai.APITimeoutError:
            reason, detail, rid = "timeout", "no answer within the request timeout", None
        except openai.APIConnectionError as e:
            reason, detail, rid = "connection_error", f"{type(e).__name__}: {e}", None
        except openai.APIStatusError as e:
            if e.status_code < 500:  # a 4xx other than 429 is our request's fault: asking again won't help
                out.request_id = e.request_id
                return out.fail("api_error", f"HTTP {e.status_code}: {error_message(e)}")
            reason, detail, rid = "server_error", f"HTTP {e.status_code}: {error_message(e)}", e.request_id
        except json.JSONDecodeError as e:
            reason, detail, rid = "malformed_response", f"unreadable response body: {e}", raw.headers.get("x-request-id")
        else:
            out.request_id = raw.headers.get("x-request-id")
            if not isinstance(obj, dict):
                return out.fail("malformed_response", f"response body is a JSON {type(obj).__name__}, not an object")
            return classify(api, obj, prompter, out)
        out.request_id = rid
        if attempt < max_retries:  # a retry follows: counted as one (the last failed attempt is no retry)
            out.retries[reason] = out.retries.get(reason, 0) + 1
            await asyncio.sleep(delay)
    return out.fail(reason, f"{detail} (gave up after {out.attempts} attempts)")


def _retry_after(response) -> float | None:
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = response.headers.get(name)
        if value:
            try:
                return max(0.0, float(value) * scale)
            except ValueError:
                continue  # an HTTP date: fall back to backoff rather than parse calendars
    return None

