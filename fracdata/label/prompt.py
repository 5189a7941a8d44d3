"""One labelling request: instructions, the re-encoded image, the delimited source text.

The request body is a plain dict of the SDK's keyword arguments (Responses or Chat Completions);
the same dict is a Batch API line body, so both modes send exactly the same request.
Source text (caption, excerpts) is untrusted: it goes only inside <untrusted_source_text> as a
JSON object, so no caption can close the block, add instructions or change the schema.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import math
import re
from dataclasses import asdict, dataclass

from fracdata.answer import template, templates_sha256
from fracdata.images import ImageError, open_normalised
from fracdata.label.schema import IMAGE_TYPES, SCHEMA_NAME, answer_model, schema_sha256, strict_schema

TEMPLATES = ("label_instructions.j2", "label_input.j2")
# Anything that looks like an opening or closing <untrusted...> tag in source text is removed.
UNTRUSTED_TAG = re.compile(r"<\s*/?\s*untrusted[^>]*>", re.I)
# What building one request raises for a bad image: the caller records it as unreadable_image.
IMAGE_ERRORS = (ImageError, OSError)


@dataclass(frozen=True)
class Params:
    """Everything that changes the request; all of it is part of the cache key."""

    api: str = "responses"  # responses | chat
    model: str = "gpt-5.2"
    effort: str = "high"  # Responses reasoning.effort; ignored (and keyed as such) for chat
    max_side: int = 1536  # px; the API's high-detail mode works at <= 2048 x 768 anyway
    image_format: str = "jpeg"  # jpeg keeps a 1536 px SEM image near 300 kB instead of ~2 MB PNG
    jpeg_quality: int = 90
    detail: str = "high"
    # gpt-5.2 at effort high can think for ~10k tokens before a ~500-token answer: leave room,
    # or the answer is cut off (status incomplete, a counted failure that still costs money).
    max_output_tokens: int = 16000
    temperature: float | None = None  # chat only (llamafactory-cli api samples unless told 0)
    chat_format: str = "json_schema"  # chat: send response_format, or "text": schema in the prompt
    max_excerpts: int = 5
    max_excerpt_chars: int = 1500


def encode_image(source, params: Params) -> tuple[str, tuple[int, int]]:
    """(data URL, (width, height)) of the image re-encoded at most `max_side` px on its long side.

    `source`: a path, file object or PIL image. The pixels are the builder's (and the specialist's)
    normalisation, `fracdata.images.open_normalised`: EXIF orientation, alpha over white, 16-bit
    stretched. Any failure is an ImageError.
    """
    from PIL import Image

    im = open_normalised(source)
    try:
        im.thumbnail((params.max_side, params.max_side), Image.Resampling.LANCZOS)
        buf = io.BytesIO()
        if params.image_format == "png":
            im.save(buf, "PNG", optimize=False)
        else:
            im.save(buf, "JPEG", quality=params.jpeg_quality)
    except (OSError, ValueError) as e:
        raise ImageError(f"{type(e).__name__}: {e}") from e
    mime = "png" if params.image_format == "png" else "jpeg"
    return f"data:image/{mime};base64,{base64.b64encode(buf.getvalue()).decode()}", im.size


def image_tokens(size: tuple[int, int]) -> int:
    """OpenAI's high-detail estimate: fit 2048 px, short side to 768 px, 170 per 512 px tile + 85.

    A 1536 x 1024 image -> 1152 x 768 -> 3 x 2 tiles -> 85 + 6 * 170 = 1,105 tokens. Used only
    for the tokens-per-minute limiter (a typical figure); the budget reserves fracdata.llm's
    upper bound instead.
    """
    w, h = size
    s = min(1.0, 2048 / max(w, h))
    w, h = w * s, h * s
    s = min(1.0, 768 / min(w, h))
    return 85 + 170 * math.ceil(w * s / 512) * math.ceil(h * s / 512)


class Prompter:
    def __init__(self, taxonomy, params: Params):
        self.taxonomy, self.params = taxonomy, params
        self.model = answer_model(tuple(taxonomy.ids))
        self.schema = strict_schema(self.model)
        self.schema_sha256 = schema_sha256(self.schema)
        in_text = params.api == "chat" and params.chat_format == "text"
        self.instructions = template("label_instructions.j2").render(
            taxonomy=taxonomy, image_types=IMAGE_TYPES,
            schema_json=json.dumps(self.schema, sort_keys=True) if in_text else "")
        self._input = template("label_input.j2")
        key = {"templates": templates_sha256(TEMPLATES), "taxonomy_version": taxonomy.version,
               "taxonomy_sha256": taxonomy.sha256, "schema": self.schema_sha256, "params": asdict(params)}
        self._key_prefix = json.dumps(key, sort_keys=True)
        self.prompt_version = templates_sha256(TEMPLATES)[:12]

    def cache_key(self, image_id: str) -> str:
        """sha256 of (image id, templates, taxonomy, schema, model, effort and every parameter)."""
        return hashlib.sha256(f"{image_id}\n{self._key_prefix}".encode()).hexdigest()

    def source_text(self, caption: str, excerpts: list[str]) -> str:
        p = self.params
        data = {"caption": UNTRUSTED_TAG.sub("[tag removed]", caption or ""),
                "excerpts": [UNTRUSTED_TAG.sub("[tag removed]", e[: p.max_excerpt_chars]) for e in excerpts[: p.max_excerpts]]}
        return self._input.render(source_json=json.dumps(data, ensure_ascii=False, indent=1))

    def inputs(self, caption: str, excerpts: list[str]) -> list[str]:
        """What a request for this text carries (recorded in each label's `labeler.inputs`)."""
        sent = [e for e in excerpts[: self.params.max_excerpts] if e]
        return ["image"] + (["caption"] if caption else []) + (["excerpts"] if sent else [])

    def body(self, image_path, caption: str, excerpts: list[str]) -> tuple[dict, int, int]:
        """(SDK keyword arguments, estimated input tokens, upper bound on input tokens) for one image.

        The estimate (~3 characters per token, right for English) paces the tokens-per-minute
        limiter; the bound (fracdata.llm.input_bound) is what the budget reserves, since a caption
        in a script of ~1 token per character would take the estimate past its bill.
        """
        from fracdata.llm.prices import input_bound

        p = self.params
        url, size = encode_image(image_path, p)
        text = self.source_text(caption, excerpts)
        est = image_tokens(size) + math.ceil((len(self.instructions) + len(text)) / 3)
        if p.api == "responses":
            body = {"model": p.model, "instructions": self.instructions,
                    "input": [{"role": "user", "content": [
                        {"type": "input_image", "image_url": url, "detail": p.detail},
                        {"type": "input_text", "text": text}]}],
                    "reasoning": {"effort": p.effort}, "max_output_tokens": p.max_output_tokens,
                    "text": {"format": {"type": "json_schema", "name": SCHEMA_NAME, "schema": self.schema,
                                        "strict": True}},
                    "store": False}
        else:
            body = {"model": p.model,
                    "messages": [{"role": "system", "content": self.instructions},
                                 {"role": "user", "content": [
                                     {"type": "image_url", "image_url": {"url": url, "detail": p.detail}},
                                     {"type": "text", "text": text}]}],
                    "max_tokens": p.max_output_tokens}
            if p.temperature is not None:
                body["temperature"] = p.temperature
            if p.chat_format == "json_schema":
                body["response_format"] = {"type": "json_schema", "json_schema": {
                    "name": SCHEMA_NAME, "schema": self.schema, "strict": True}}
        return body, est, input_bound(body, [size])
