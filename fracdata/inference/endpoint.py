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
retries: callers never cache them, so the next run asks again.
"""

from __future__ import annotations

import base64
import io
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

from fracdata.inference import Answer

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


class Endpoint:
    """One served model: `model` at `base_url`, its key read from the variable `key_env` (None:
    a keyless local server), `decoding` sent as written (`extra_body` goes to the SDK's extra_body).
    `resize` = (image_max_pixels, image_min_pixels): send the image as LlamaFactory's training
    resize left it (a served fracdata checkpoint: the server's processor then sees training's
    pixels and image tokens); None sends the image as given (a third-party API model)."""

    def __init__(self, base_url: str, model: str, key_env: str | None = None, decoding: dict | None = None,
                 max_retries: int = 4, timeout_s: float = 120.0, name: str | None = None,
                 resize: tuple[int, int] | None = None):
        from fracdata.llm import client

        self.base_url, self.model, self.key_env, self.name = base_url, model, key_env, name or model
        self.resize = resize
        self.decoding = dict(decoding or {})
        self.extra_body = self.decoding.pop("extra_body", None)
        self.client = client(base_url=base_url, key_env=key_env, max_retries=max_retries, timeout=timeout_s)

    def ask(self, prompt: str, image, logprobs: bool = False) -> Answer:
        """One answer. With `logprobs`, asks for token log-probabilities; a server that refuses
        them with HTTP 400 (OpenAI's reasoning models) is asked again without, and `note` says so."""
        import openai

        from fracdata.inference.qwen import lf_preprocess
        from fracdata.llm import sdk_error

        if self.resize is not None:
            image = lf_preprocess(image, *self.resize)
        messages = [{"role": "user", "content": content_parts(prompt, data_url(image))}]
        t0 = time.time()
        note = None

        def create(**extra):
            return self.client.chat.completions.create(model=self.model, messages=messages,
                                                       extra_body=self.extra_body, **self.decoding, **extra)
        try:
            try:
                resp = create(logprobs=True) if logprobs else create()
            except openai.BadRequestError as e:
                if not logprobs or "logprob" not in str(e).lower():
                    raise
                note = "the endpoint refused logprobs (HTTP 400): no confidence"
                resp = create()
        except openai.OpenAIError as e:  # after the SDK's retries
            return Answer(error=short(sdk_error(e, self.key_env)), latency_s=round(time.time() - t0, 4))
        a = Answer(latency_s=round(time.time() - t0, 4), response_model=resp.model, note=note,
                   usage=resp.usage.model_dump(exclude_none=True) if resp.usage else None)
        if not resp.choices:
            a.error = "response has no choices"
            return a
        choice = resp.choices[0]
        a.raw, a.finish_reason = (choice.message.content or "").strip(), choice.finish_reason
        if choice.finish_reason in UNFINISHED:
            a.error = f"finish_reason {choice.finish_reason}: {UNFINISHED[choice.finish_reason]}"
        elif not a.raw and getattr(choice.message, "refusal", None):
            a.error = short(f"refusal: {choice.message.refusal}")
        elif not a.raw:
            a.error = f"empty answer (finish_reason {choice.finish_reason})"
        if logprobs:
            self._logprobs(a, choice)
        return a

    @staticmethod
    def _logprobs(a: Answer, choice) -> None:
        content = choice.logprobs.content if choice.logprobs and choice.logprobs.content else None
        if content is None:
            a.note = a.note or "the endpoint returned no logprobs: no confidence"
            return
        tokens, lps = [c.token for c in content], [float(c.logprob) for c in content]
        if "".join(tokens).strip() != a.raw:
            a.note = "the endpoint's logprob tokens do not spell its answer: no confidence"
            return
        a.tokens, a.logprobs = tokens, lps

    def answer(self, items, prompt: str, concurrency: int, log=print):
        """Yield (id, Answer) for (id, image loader) pairs as answers arrive, `concurrency` in flight."""
        items = list(items)
        with ThreadPoolExecutor(max_workers=concurrency) as pool:
            futures = {pool.submit(lambda load: self.ask(prompt, load()), load): iid for iid, load in items}
            for done, fut in enumerate(as_completed(futures), 1):
                yield futures[fut], fut.result()
                if done % 25 == 0 or done == len(items):
                    log(f"  {self.name}: {done}/{len(items)} requests answered")
