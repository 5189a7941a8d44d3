"""The openai SDK client and what guards its keys: key redaction, the missing-key check, one-line
error text.

Keys live in environment variables only, named by the caller (`OPENAI_API_KEY` for the
labeller, a model entry's `api_key_env` elsewhere), and never reach a file or a log: every
error text that may be written goes through `redact`.

Every request through `client` is bounded in all by its timeout (fracdata/llm/deadline.py), not per
read. A key must be printable ASCII (it goes in an HTTP header); what a server sends back is
redacted where it enters (`redact` on answer text), so a key echoed inside an answer is never
written, whatever its length.
"""

from __future__ import annotations

import os
import re

from fracdata.errors import FracdataError

KEYLESS = "not-needed"  # a keyless local server still needs a non-empty string for the SDK
DEFAULT_KEY_ENV = "OPENAI_API_KEY"  # the SDK's own variable: always redacted
_KEYLIKE = re.compile(r"\b(sk-[A-Za-z0-9_\-*]{4,}|Bearer\s+\S+)")


def redact(text: str, *env_names: str | None) -> str:
    """`text` without the values of OPENAI_API_KEY and the named key variables (whatever their
    length or shape: a Gemini key is not `sk-...`; a 1-character key too, so choose keys that
    do not occur in answers) and without anything shaped like a key."""
    if not isinstance(text, str):
        return text
    for name in {DEFAULT_KEY_ENV, *env_names} - {None}:
        value = os.environ.get(name)
        if value:
            text = text.replace(value, "***")
    return _KEYLIKE.sub("***", text)


def missing_key(env_name: str | None) -> str | None:
    """The variable to set when one is named and it is unset or empty; else None."""
    return env_name if env_name and not os.environ.get(env_name) else None


def client(base_url: str | None = None, key_env: str | None = DEFAULT_KEY_ENV, max_retries: int = 2,
           timeout: float = 600.0, asynchronous: bool = False):
    """The openai SDK client. `base_url` None: the SDK's OPENAI_BASE_URL or api.openai.com;
    `key_env` None: a keyless local server (KEYLESS is sent)."""
    import openai

    from fracdata.llm.deadline import http_client

    key = os.environ.get(key_env) if key_env else KEYLESS
    if key and not (key.isascii() and key.isprintable()):
        raise FracdataError(f"{key_env} holds a character that cannot go in an HTTP header (non-ASCII, a newline "
                            "or a control character): check the variable's value")
    cls = openai.AsyncOpenAI if asynchronous else openai.OpenAI
    try:
        return cls(base_url=base_url, api_key=key, max_retries=max_retries, timeout=timeout,
                   http_client=http_client(timeout, asynchronous))
    except openai.OpenAIError as e:
        raise FracdataError(f"cannot create the OpenAI client: {redact(str(e), key_env)} "
                            f"(set {key_env}; any value for a local server)") from None


def error_message(e) -> str:
    """The server's own message from an SDK APIStatusError: the body's `message`, or a nested
    `{"error": {"message": ...}}` one, else the SDK's summary. Not redacted: callers do that."""
    body = e.body if isinstance(getattr(e, "body", None), dict) else {}
    nested = body.get("error") if isinstance(body.get("error"), dict) else {}
    return str(body.get("message") or nested.get("message") or e.message)


def sdk_error(e, *env_names: str | None) -> str:
    """One redacted line for an SDK error after its retries: `HTTP 500: <server message>` for a
    status error, `<ExceptionName>: <text>` for a refused connection or a timeout."""
    import openai

    text = f"HTTP {e.status_code}: {error_message(e)}" if isinstance(e, openai.APIStatusError) \
        else f"{type(e).__name__}: {e}"
    return redact(" ".join(text.split()), *env_names)

