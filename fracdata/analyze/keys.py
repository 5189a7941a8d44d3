"""Key hygiene: keys live in environment variables only, and never reach a file or a log."""

from __future__ import annotations

import os


def redact(text: str, *env_names: str | None) -> str:
    """Remove the values of the named key variables (and anything key-shaped) from `text`.

    The labeller's `redact` covers OPENAI_API_KEY and `sk-...`/`Bearer ...` shapes; an entry's
    own `api_key_env` (e.g. GEMINI_API_KEY) may hold a key of any shape, so it is removed too.
    """
    from fracdata.label.client import redact as label_redact

    for name in env_names:
        value = os.environ.get(name) if name else None
        if value and len(value) >= 4:
            text = text.replace(value, "***")
    return label_redact(text)
