"""The analysis record (JSON schema `fracdata-analysis` v2) and the generalist's structured answer.

One `Analysis` per image, keyed by `id` = the image id every stage uses (fracdata.images.image_id:
sha256 of the decoded pixels; `file_sha256` is the sha256 of the bytes that were analysed;
`files` every input file with those pixels):
  specialist  the fine-tuned model's features, and every taxonomy feature's probability with
              its decision (present / absent / review, fracdata/analyze/decide.py) where the
              backend gives them (a local checkpoint; calibrated by its calibration.json)
  needs_person, review  whether a person must look, at the user's --review-threshold, and why
  generalist  the general model's report (fracture mode, mechanism, initiation site, what to
              image next, caveats), every statement with the specialist features it cites
  flags       what a reader must know: generalist_missing_key / generalist_failed /
              budget_exhausted / unpriced (a paid model with no price: cost unknown), and per
              statement unknown_citation / not_in_evidence / uncited_feature (`check_citations`)
Bump SCHEMA_VERSION when a field changes meaning or disappears (adding an optional field is fine).
v2: the token-product `confidence` went (features carry `probability`; `probabilities`,
`probability_kind`, `calibration`, `needs_person`, `review`, `files` came).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

SCHEMA_NAME = "fracdata-analysis"
SCHEMA_VERSION = 2
REPORT_SCHEMA_NAME = "fractography_report"  # the name sent with the generalist's JSON schema


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- the generalist's answer (strict JSON schema sent to the Responses API) --------------------
class Statement(_Strict):
    text: str = Field(description="one or two sentences")
    cites: list[str] = Field(description="ids of the specialist features this statement rests on; empty if none")


class ImagingStep(_Strict):
    region: str = Field(description="where on the specimen or in this image to look next")
    magnification: str = Field(description="magnification or field width, e.g. '2000x' or '50 um field'")
    purpose: str = Field(description="what this image would confirm or rule out")
    cites: list[str] = Field(description="ids of the specialist features that motivate it; empty if none")


class GeneralistAnswer(_Strict):
    fracture_mode: Statement = Field(description="e.g. fatigue followed by ductile overload")
    mechanism: Statement = Field(description="the likely damage mechanism")
    initiation_site: Statement = Field(description="the probable initiation site, or why it is not visible")
    image_next: list[ImagingStep] = Field(description="what to image next, most informative first")
    caveats: list[Statement] = Field(description="limits of this reading")


STATEMENT_FIELDS = ("fracture_mode", "mechanism", "initiation_site")


# -- the analysis record -------------------------------------------------------------------------
class SpecialistFeature(_Strict):
    id: str
    name: str
    probability: float | None  # as in `probabilities`; None = the backend gives none


class FeatureProbability(_Strict):
    id: str
    name: str
    probability: float  # calibrated (probability_kind "calibrated"), else the model's own score
    score: float  # the model's own score p_f (fracdata/inference/feature_probs.py)
    listed: bool  # the answer names it
    decision: Literal["present", "absent", "review"]  # at the review threshold (decide.py)


class Review(_Strict):
    needs_person: bool
    threshold: float
    features: list[str]  # the features whose probability lies between 1 - threshold and threshold
    reason: str


class InputFile(_Strict):
    path: str  # as given
    file_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")


class SpecialistResult(_Strict):
    model: str  # entry name
    kind: Literal["local", "openai-compatible"]
    endpoint: str  # checkpoint folder or base URL
    raw: str  # the model's answer, verbatim
    status: str  # parse_answer status: ok | none | empty | unparsed
    features: list[SpecialistFeature]
    unknown: list[str]  # answer terms that map to no taxonomy id
    probabilities: list[FeatureProbability] | None  # every taxonomy feature, taxonomy order; None = none
    probability_kind: Literal["calibrated", "uncalibrated", "none"]
    probability_note: str | None = None  # why they are uncalibrated or missing
    calibration: dict | None = None  # {file, method, fitted_on} of the calibration.json applied
    latency_s: float
    usage: dict[str, int] | None = None
    response_model: str | None = None
    cost_usd: float | None = None


class Flag(_Strict):
    kind: str
    where: str | None = None  # e.g. "mechanism", "image_next[0]", "caveats[1]"
    detail: str


class GeneralistResult(_Strict):
    model: str  # requested model name
    endpoint: str
    response_model: str | None = None
    request_id: str | None = None
    report: GeneralistAnswer
    usage: dict[str, int] | None = None
    cost_usd: float | None = None
    latency_s: float


class Analysis(_Strict):
    schema_name: Literal["fracdata-analysis"] = SCHEMA_NAME
    schema_version: Literal[2] = SCHEMA_VERSION
    id: str = Field(pattern=r"^[0-9a-f]{64}$")  # pixel id (fracdata.images.image_id)
    file_sha256: str | None = Field(None, pattern=r"^[0-9a-f]{64}$")  # the bytes analysed
    image: str  # as given (path or upload file name); the first of `files`
    files: list[InputFile] = Field(default_factory=list)  # every input with these pixels (analysed once)
    width: int
    height: int
    context: str | None = None
    specialist: SpecialistResult
    generalist: GeneralistResult | None = None  # None: specialist-only (see flags)
    needs_person: bool  # = review.needs_person: the one field an automated loop reads
    review: Review
    flags: list[Flag] = Field(default_factory=list)
    created: str  # ISO-8601 UTC
    fracdata: str  # fracdata version
    taxonomy_version: int
    cost_usd: float | None  # this analysis; None when a paid model has no price (flagged `unpriced`)


def statements(report: GeneralistAnswer):
    """(where, text, cites) for every statement of a report, in reading order."""
    for name in STATEMENT_FIELDS:
        st = getattr(report, name)
        yield name, st.text, st.cites
    for i, step in enumerate(report.image_next):
        yield f"image_next[{i}]", f"{step.region} at {step.magnification}: {step.purpose}", step.cites
    for i, st in enumerate(report.caveats):
        yield f"caveats[{i}]", st.text, st.cites


def check_citations(report: GeneralistAnswer, evidence: list[str], taxonomy) -> list[Flag]:
    """Every cited feature must be one the specialist reported; every feature a statement uses
    must be cited.

      unknown_citation  a cited term that is no taxonomy id at all (ids are cited, not names)
      not_in_evidence   a taxonomy id the specialist did not report for this image
      uncited_feature   the text names a specialist feature (by id, name or synonym, read with
                        the benchmark's parser, negations excluded) that `cites` leaves out
    """
    from fracdata.answer import parse_answer

    flags: list[Flag] = []
    have = set(evidence)
    for where, text, cites in statements(report):
        for c in cites:
            if c not in taxonomy.by_id:
                flags.append(Flag(kind="unknown_citation", where=where, detail=f"cites {c!r}, which is no taxonomy id"))
            elif c not in have:
                flags.append(Flag(kind="not_in_evidence", where=where,
                                  detail=f"cites {c!r}, which the specialist did not report"))
        used = [f for f in parse_answer(text, taxonomy).labels if f in have and f not in cites]
        for f in used:
            flags.append(Flag(kind="uncited_feature", where=where, detail=f"names {f!r} without citing it"))
    return flags
