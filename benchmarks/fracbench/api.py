"""API models through the openai SDK's Chat Completions (OpenAI, Gemini's OpenAI-compatible
endpoint, vLLM's and `llamafactory-cli api`'s servers).

The request carries the task prompt as text parts around one image part at the `<image>`
position, and exactly the entry's decoding keys: GPT-5.x wants `max_completion_tokens` and
`reasoning_effort` and refuses `temperature`; llamafactory-cli api wants `max_tokens` and
`temperature: 0` (it samples by default) and ignores unknown keys. Retries (429, 5xx,
timeouts, with the SDK's exponential backoff and Retry-After) are the SDK's own `max_retries`;
an item still failing after them is returned with its error, never cached.
"""

from __future__ import annotations

import base64
import io
import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed

KEYLESS = "not-needed"  # local servers without a key still need a non-empty string for the SDK


def missing_key(entry) -> str | None:
    """The variable to set when the entry names one and it is unset/empty; else None."""
    if entry.kind == "openai-compatible" and entry.api_key_env and not os.environ.get(entry.api_key_env):
        return entry.api_key_env
    return None


def make_client(entry):
    """The openai SDK client for an openai-compatible entry (fracbench and `fracdata analyze`):
    its base URL, key (from `api_key_env`, or KEYLESS), retries and timeout."""
    import openai

    key = os.environ[entry.api_key_env] if entry.api_key_env else KEYLESS
    return openai.OpenAI(base_url=entry.base_url, api_key=key, max_retries=entry.max_retries, timeout=entry.timeout_s)


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


def run_api(entry, prompt: str, loaders: list, log=print, on_result=None) -> list[dict]:
    """Answer every image with `entry.concurrency` requests in flight; one result dict per image.
    `on_result(i, result)` is called as each answer arrives (so an interrupted run keeps them)."""
    import openai

    from fracdata.llm import error_message

    client = make_client(entry)
    decoding = dict(entry.decoding)
    extra_body = decoding.pop("extra_body", None)

    def one(load) -> dict:
        messages = [{"role": "user", "content": content_parts(prompt, data_url(load()))}]
        t0 = time.time()
        try:
            resp = client.chat.completions.create(model=entry.model, messages=messages,
                                                  extra_body=extra_body, **decoding)
        except openai.APIStatusError as e:  # after the SDK's retries
            return {"raw": "", "error": f"HTTP {e.status_code}: {short_error(error_message(e), entry)}",
                    "latency_s": round(time.time() - t0, 4)}
        except openai.OpenAIError as e:  # connection errors, timeouts
            return {"raw": "", "error": f"{type(e).__name__}: {short_error(str(e), entry)}",
                    "latency_s": round(time.time() - t0, 4)}
        latency = round(time.time() - t0, 4)
        if not resp.choices:
            return {"raw": "", "error": "response has no choices", "latency_s": latency}
        choice = resp.choices[0]
        return {"raw": (choice.message.content or "").strip(), "error": None, "latency_s": latency,
                "usage": resp.usage.model_dump(exclude_none=True) if resp.usage else None,
                "finish_reason": choice.finish_reason, "response_model": resp.model}

    results: list[dict] = [None] * len(loaders)  # type: ignore[list-item]
    done = 0
    with ThreadPoolExecutor(max_workers=entry.concurrency) as pool:
        futures = {pool.submit(one, load): i for i, load in enumerate(loaders)}
        for fut in as_completed(futures):
            i = futures[fut]
            results[i] = fut.result()
            if on_result is not None:
                on_result(i, results[i])
            done += 1
            if done % 25 == 0 or done == len(loaders):
                log(f"  {entry.name}: {done}/{len(loaders)} requests answered")
    return results


def short_error(text: str, entry, n: int = 200) -> str:
    """One line of at most n characters, without the entry's key (or anything key-shaped): error
    strings go to prediction files and logs, and servers quote the key they were sent."""
    from fracdata.llm import redact

    text = redact(" ".join(str(text).split()), entry.api_key_env)
    return text if len(text) <= n else text[: n - 1] + "…"
