"""An OpenAI-compatible Chat Completions endpoint through the openai SDK (vLLM's and
`llamafactory-cli api`'s servers, OpenAI, Gemini's OpenAI-compatible endpoint).

The request carries the prompt as text parts around one PNG image part at the `<image>` position,
and exactly the caller's decoding keys: GPT-5.x wants `max_completion_tokens` and
`reasoning_effort` and refuses `temperature`; llamafactory-cli api wants `max_tokens` and
`temperature: 0` (it samples by default). Retries (429, 5xx, timeouts, with the SDK's exponential
backoff and Retry-After) are the SDK's own `max_retries`.

An answer is usable only when the model finished it: `finish_reason` `length` (cut off at the
token limit; a reasoning model may have spent it all thinking) or `content_filter`, and an empty
answer (a refusal says so), are failures with the reason in `error`, like an HTTP error after the
retries: callers never cache them, so the next run asks again. So are bodies of the wrong shape
(`malformed response: ...`) and answers holding text UTF-8 cannot encode (`unencodable_text: ...`,
a `\\ud800` escape: it could never be written). The body is read as JSON here, field by field, so
no shape a server sends can crash a run; answer text is redacted of the entry's key on arrival.
"""

from __future__ import annotations

import base64
import io
import json
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from fracdata.inference.reply import Answer
from fracdata.untrusted import REASON as UNENCODABLE, escape, loads, text_problem

UNFINISHED = {"length": "the answer was cut off at the token limit (raise it in the entry's decoding)",
              "content_filter": "the provider's content filter withheld or cut the answer"}
MAX_ERROR_CHARS = 200  # errors go to prediction rows and logs: one short line


def data_url(image) -> str:
    """PNG data URL: lossless, and accepted by every server here (llamafactory-cli api takes
    png/jpg/jpeg/gif/bmp only, so TIFF or WebP originals are re-encoded)."""
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def content_parts(prompt: str, url: str) -> list[dict]:
    before, _, after = prompt.partition("<image>")
    parts = [{"type": "text", "text": before}] if before else []
    parts.append({"type": "image_url", "image_url": {"url": url}})
    if after:
        parts.append({"type": "text", "text": after})
    return parts


def short(text: str, n: int = MAX_ERROR_CHARS) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _without_none(d: dict) -> dict:
    """A usage block without its null fields, nested ones included (what the SDK's model_dump gave)."""
    return {k: _without_none(v) if isinstance(v, dict) else v for k, v in d.items() if v is not None}


class Endpoint:
    """One served model: `model` at `base_url`, its key read from the variable `key_env` (None:
    a keyless local server), `decoding` sent as written (`extra_body` goes to the SDK's extra_body).
    `resize` = (image_max_pixels, image_min_pixels): send the image as LlamaFactory's training
    resize left it (a served fracdata checkpoint: the server's processor then sees training's
    pixels and image tokens); None sends the image as given (a third-party API model).
    `answer` keeps `concurrency` requests in flight."""

    LOGPROB_SOURCE = "chat-logprobs"  # the server's `logprobs: true`

    def __init__(self, base_url: str, model: str, key_env: str | None = None, decoding: dict | None = None,
                 max_retries: int = 4, timeout_s: float = 120.0, name: str | None = None,
                 resize: tuple[int, int] | None = None, concurrency: int = 4):
        from fracdata.llm import client

        self.base_url, self.model, self.key_env, self.name = base_url, model, key_env, name or model
        self.resize, self.concurrency = resize, concurrency
        self.where = base_url  # what answered: the server
        self.decoding = dict(decoding or {})
        self.extra_body = self.decoding.pop("extra_body", None)
        self.client = client(base_url=base_url, key_env=key_env, max_retries=max_retries, timeout=timeout_s)

    def ask(self, image, prompt: str, logprobs: bool = False) -> Answer:
        """One answer. With `logprobs`, asks for token log-probabilities; a server that refuses
        them with HTTP 400 (OpenAI's reasoning models) is asked again without, and `note` says so."""
        import openai

        from fracdata.train.qwen import lf_preprocess
        from fracdata.llm import sdk_error

        if self.resize is not None:
            image = lf_preprocess(image, *self.resize)
        messages = [{"role": "user", "content": content_parts(prompt, data_url(image))}]
        t0 = time.time()
        note = None

        def create(**extra):
            return self.client.chat.completions.with_raw_response.create(
                model=self.model, messages=messages, extra_body=self.extra_body, **self.decoding, **extra)
        try:
            try:
                raw = create(logprobs=True) if logprobs else create()
            except openai.BadRequestError as e:
                if not logprobs or "logprob" not in str(e).lower():
                    raise
                note = "the endpoint refused logprobs (HTTP 400): no confidence"
                raw = create()
            obj = loads(raw.text)
        except openai.OpenAIError as e:  # after the SDK's retries
            return Answer(error=short(sdk_error(e, self.key_env)), latency_s=round(time.time() - t0, 4))
        except json.JSONDecodeError as e:
            return Answer(error=short(f"malformed response: the body is not JSON ({e})"), latency_s=round(time.time() - t0, 4))
        a = Answer(latency_s=round(time.time() - t0, 4), note=note)
        self._read(a, obj, logprobs)
        problem = text_problem(a.record())
        if problem is not None:  # never written, never cached: asked again next run
            a.raw, a.tokens, a.logprobs = "", None, None
            a.error = short(f"{UNENCODABLE}: the answer's {escape(problem)}")
        return a

    def _read(self, a: Answer, obj, logprobs: bool) -> None:
        """Fill `a` from a Chat Completions body, of whatever shape it came."""
        from fracdata.llm import redact

        if not isinstance(obj, dict):
            a.error = f"malformed response: the body is a JSON {type(obj).__name__}, not an object"
            return
        model, usage = obj.get("model"), obj.get("usage")
        a.response_model = redact(model, self.key_env) if isinstance(model, str) else None
        a.usage = _without_none(usage) if isinstance(usage, dict) else None
        choices = obj.get("choices")
        if not choices:
            a.error = "response has no choices"
            return
        choice = choices[0] if isinstance(choices, list) else None
        msg = choice.get("message") if isinstance(choice, dict) else None
        if not isinstance(msg, dict) or not isinstance(msg.get("content") or "", str):
            a.error = "malformed response: choices[0].message is not an object with text content"
            return
        finish = choice.get("finish_reason")
        a.finish_reason = finish if isinstance(finish, str) else None
        a.raw = redact((msg.get("content") or "").strip(), self.key_env)
        refusal = msg.get("refusal")
        if a.finish_reason in UNFINISHED:
            a.error = f"finish_reason {a.finish_reason}: {UNFINISHED[a.finish_reason]}"
        elif not a.raw and refusal:
            a.error = short(redact(f"refusal: {refusal}", self.key_env))
        elif not a.raw:
            a.error = f"empty answer (finish_reason {a.finish_reason})"
        if logprobs:
            self._logprobs(a, choice)

    @staticmethod
    def _logprobs(a: Answer, choice: dict) -> None:
        lp = choice.get("logprobs")
        content = lp.get("content") if isinstance(lp, dict) else None
        if not content or not isinstance(content, list):
            a.note = a.note or "the endpoint returned no logprobs: no confidence"
            return
        if not all(isinstance(c, dict) and isinstance(c.get("token"), str)
                   and isinstance(c.get("logprob"), (int, float)) for c in content):
            a.note = "the endpoint's logprobs are not (token, logprob) pairs: no confidence"
            return
        tokens, lps = [c["token"] for c in content], [float(c["logprob"]) for c in content]
        if "".join(tokens).strip() != a.raw:
            a.note = "the endpoint's logprob tokens do not spell its answer: no confidence"
            return
        a.tokens, a.logprobs = tokens, lps

    def answer(self, items, prompt: str, log=print):
        """Yield (id, Answer) for (id, image loader) pairs as answers arrive, `concurrency` in flight."""
        items = list(items)
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = {pool.submit(lambda load: self.ask(load(), prompt), load): iid for iid, load in items}
            for done, fut in enumerate(as_completed(futures), 1):
                yield futures[fut], fut.result()
                if done % 25 == 0 or done == len(items):
                    log(f"  {self.name}: {done}/{len(items)} requests answered")
