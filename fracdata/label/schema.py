"""The structured answer the labeller asks for, as a pydantic model built from the taxonomy.

The same model gives the strict JSON schema sent to the API (`text.format` / `response_format`)
and validates what comes back, so a server that ignores the schema (a chat endpoint without
`response_format`) is held to exactly the same rules: an answer that does not validate is a
counted failure (`schema_invalid`), never a half-label.
"""

from __future__ import annotations

import hashlib
import json
from enum import Enum
from functools import lru_cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

# "not a fracture surface" lets the model say so instead of inventing features for a micrograph,
# a schematic or a plot that the miner let through.
IMAGE_TYPES = ("SEM fractograph", "optical fractograph", "macro photograph of a fracture surface",
               "other fractograph", "not a fracture surface")
SCHEMA_NAME = "fractograph_labels"


class AnswerError(ValueError):
    """An answer that is not JSON or does not match the schema; `reason` is the failure reason."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason, self.detail = reason, detail


@lru_cache(maxsize=8)
def answer_model(feature_ids: tuple[str, ...]) -> type[BaseModel]:
    """`LabelAnswer` for one taxonomy: feature ids are an enum, so a strict server cannot invent one."""
    FeatureId = Enum("FeatureId", {fid: fid for fid in feature_ids}, type=str)
    Finding = create_model(
        "Finding",
        __config__=ConfigDict(extra="forbid"),
        id=(FeatureId, Field(description="taxonomy id of a feature visible in the image")),
        evidence=(str, Field(description="where and how the image shows it, in a few words")),
    )
    return create_model(
        "LabelAnswer",
        __config__=ConfigDict(extra="forbid"),
        image_type=(Literal[IMAGE_TYPES], Field(description="what the image is")),
        features=(list[Finding], Field(description="every taxonomy feature visible; empty when none")),
        material=(str | None, Field(description="material named in the caption or excerpts, else null")),
        magnification=(str | None, Field(description="magnification or scale bar as stated, else null")),
        rationale=(str, Field(description="one or two sentences on the overall fracture mode")),
    )


def strict_schema(model: type[BaseModel]) -> dict:
    """The strict JSON schema OpenAI structured output accepts (all keys required, no extras).

    The SDK's own converter does the strict rewriting (every property required, nullable
    as anyOf null, additionalProperties false), so the schema matches what `responses.parse`
    would send.
    """
    from openai.lib._pydantic import to_strict_json_schema

    return to_strict_json_schema(model)


def schema_sha256(schema: dict) -> str:
    return hashlib.sha256(json.dumps(schema, sort_keys=True).encode()).hexdigest()


def extract_json(text: str) -> dict:
    """The first JSON object in `text` (whole text, a ```json fence, or prose around an object)."""
    text = (text or "").strip()
    if not text:
        raise AnswerError("empty_answer", "the answer has no text")
    decoder = json.JSONDecoder()
    starts = [i for i, ch in enumerate(text) if ch == "{"]
    for start in starts[:50]:  # prose may hold stray braces; 50 tries is plenty for one answer
        try:
            obj, _ = decoder.raw_decode(text, start)
        except (json.JSONDecodeError, RecursionError):  # RecursionError: nested deeper than ~1,000 levels
            continue
        if isinstance(obj, dict):
            return obj
    raise AnswerError("malformed_json", f"no JSON object in the answer ({len(text)} chars): {text[:80]!r}")


def validate_answer(obj: dict, model: type[BaseModel]) -> BaseModel:
    try:
        return model.model_validate(obj)
    except ValidationError as e:
        first = e.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        raise AnswerError("schema_invalid", f"{where}: {first['msg']} ({e.error_count()} errors)") from None


def label_fields(answer: BaseModel, taxonomy) -> dict:
    """LabelRecord fields from a validated answer; features in taxonomy order, once each."""
    evidence: dict[str, str] = {}
    for finding in answer.features:
        fid = finding.id.value
        evidence[fid] = "; ".join(x for x in (evidence.get(fid), finding.evidence) if x)
    return {"features": taxonomy.sort(evidence), "evidence": {k: evidence[k] for k in taxonomy.sort(evidence)},
            "image_type": answer.image_type, "material": answer.material,
            "magnification": answer.magnification, "rationale": answer.rationale}
