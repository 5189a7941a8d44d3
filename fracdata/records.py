"""The record formats every stage reads and writes (validated with pydantic).

One record is keyed by `id` = sha256 of the image's decoded pixels (`fracdata.images.pixel_id`:
mode, size and 8-bit pixels after normalisation), from the miner to the report, so a PNG written
with another compression level or another Pillow keeps its id. Formats (one JSON object per line; examples in docs/formats.md):
  manifest  ManifestRecord   one mined image
  labels    LabelRecord      features for one image id (GPT, human or synthetic labeller)
  gold      GoldRecord       the hand-annotated benchmark
  rejects   Reject           what a stage refused, with the reason
Unknown keys are errors (`extra="forbid"`), so a typo never passes silently. Every reject
reason of every stage is a key of `REASONS` (listed in docs/formats.md; a test holds the code,
this table and the docs to the same set).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Iterator, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from fracdata.untrusted import BOM, REASON as UNENCODABLE, escape, loads, text_problem

SHA256_RE = r"^[0-9a-f]{64}$"

# Every reject reason any stage writes, with what it means. `Reject` refuses any other string.
REASONS: dict[str, str] = {
    # reading records (every stage)
    "malformed_json": "a line (or a model's answer) that is not one JSON object, or not UTF-8",
    "invalid_record": "a JSON object that breaks its record schema (a missing field, an unknown key)",
    "duplicate_id": "an id already named by an earlier record",
    "unencodable_text": "text UTF-8 cannot encode (a lone surrogate, JSON's `\\ud800`) in a record, an answer or an annotation",
    # image paths
    "path_traversal": "an image path that leaves its file's folder (`..`, absolute)",
    "symlink_outside_tree": "an image (or folder) that is a symlink to outside the file's folder",
    "symlinked_folder": "a symlinked folder inside a manual collection (not followed)",
    "missing_image": "the image file a record names does not exist, or is not a regular file (a folder, FIFO, device)",
    # one image
    "unreadable_image": "the image file could not be read (the OS refused: permissions, a symlink loop, an I/O error)",
    "id_mismatch": "the image's pixels do not hash to the record's id",
    "empty_file": "the image file has 0 bytes",
    "not_an_image": "not a recognised image format (no signature of an allowed format)",
    "too_many_pixels": "more pixels than --max-pixels, or more decoded bytes than 200 MB, read from the header (also the decompression-bomb guard)",
    "multi_frame": "an animated GIF/WebP/PNG or a multi-page TIFF",
    "unsupported_format": "a still image in a format outside PNG, JPEG, TIFF, BMP, WebP (e.g. GIF)",
    "decode_error": "a truncated or corrupt image, a damaged header included (an allowed format's signature with a header PIL refuses, a sample layout no mode holds; any failure to decode or convert it)",
    "too_small": "the shorter side is below the minimum (--min-side)",
    "extreme_aspect_ratio": "longer than --max-aspect times its width (a rule, a scale bar)",
    "duplicate_image": "the same pixels as an image already kept",
    "near_duplicate": "a near copy (rotated, flipped, re-encoded) of an image already kept",
    # build: labels and gold
    "no_label": "an image without a valid label",
    "unknown_feature": "a label naming a feature that is no taxonomy id, name or synonym",
    "manual_label_not_human": "a label in a manual collection whose labeller is not human",
    "overridden_by_human": "a GPT or synthetic label of an image that has a human label",
    "duplicate_label": "a second label of the same kind for the same image (the first wins)",
    "no_image": "a label whose id no image record names",
    "image_rejected": "a label whose image was rejected (see the image's own reject)",
    "not_fractograph": "an image its label calls 'not a fracture surface' (kept by --keep-negatives)",
    "gold_paper": "a training image from a paper that the gold benchmark draws on",
    # mine: sources and figures
    "malformed_xml": "a source file that is not well-formed XML",
    "not_jats": "XML that is not one JATS <article>",
    "corrupt_pdf": "a PDF that cannot be parsed",
    "encrypted_pdf": "a PDF encrypted with a user password",
    "no_images": "a PDF without embedded images",
    "unreadable_source": "a source file that could not be read",
    "no_graphic": "a JATS <fig> without a <graphic>",
    "missing_graphic": "a JATS graphic whose image file is not beside the article",
    "no_caption": "a PDF image with no figure caption found for it",
    "licence_not_allowed": "a figure whose licence is not on the allow-list (CC BY, CC BY-SA, CC0, public domain) or is not recorded: not mined, or left out of a release",
    "not_fracture": "a figure whose caption and citing text do not score as a fracture surface",
    "unreadable_page": "one PDF page the parser cannot read (its limit named); the paper's other pages are mined",
    "corrupt_package": "an archive's .tar.gz article package that cannot be read",
    # harvest: search hits and downloads
    "not_in_pmc": "a search hit with no PMCID (not in PubMed Central)",
    "not_open_access": "a hit that the search service or PMC does not list as open access",
    "retracted": "an article PMC marks as retracted",
    "not_in_archive": "a PMCID with no version in the PMC Cloud Service",
    "no_full_text": "an article version whose record names no JATS XML",
    "no_figures": "an article with no figure graphic among its files",
    "download_failed": "a download that failed after every retry (asked again next run)",
    "duplicate_hit": "a PMCID the search listed again",
    "missing_file": "harvest merge: a ledger line naming a file the shard folder lacks",
    "file_hash_mismatch": "harvest merge: a file whose sha256 differs from its ledger line",
    # review: Label Studio annotations
    "unknown_id": "an annotation for an image id that is not in the review",
    "other_review": "an annotation from another review's project (its review id differs)",
    "unknown_choice": "an annotation choosing a value that is not in the labelling view",
    "duplicate_annotator": "a second annotation of one image by the same person (all of theirs are rejected)",
    "annotation_skipped": "a task the annotator skipped or cancelled",
    "extra_review": "a later review of an audit or manual image (the first submitted wins)",
    "unsure": "an annotation marked 'unsure' (left out of consensus and kappa)",
    "not_annotated": "a gold image nobody annotated",
    "too_few_annotators": "a gold image with fewer annotators than --min-annotators",
    "disagreement": "a gold image whose annotators disagree and no adjudicator decided",
    # label: one request
    "budget_exhausted": "not sent: --budget-usd would be exceeded",
    "rate_limited": "HTTP 429 after every retry",
    "timeout": "no answer within the request timeout, after every retry",
    "connection_error": "the connection failed, after every retry",
    "server_error": "HTTP 5xx after every retry",
    "malformed_response": "a response body that is not a JSON object, or one of the wrong shape",
    "api_error": "HTTP 4xx other than 429 (the request's fault; not retried)",
    "batch_error": "a batch output line with an error other than 429 or 5xx",
    "batch_missing": "a batch request in neither the output nor the error file (expired, cancelled)",
    "response_failed": "a Responses object whose status is failed or cancelled",
    "incomplete": "an answer cut short (max_output_tokens)",
    "length": "a chat answer cut short (finish_reason length)",
    "content_filter": "an answer stopped by the provider's content filter",
    "refusal": "the model refused",
    "empty_answer": "an answer with no text",
    "schema_invalid": "an answer that breaks the label schema",
}


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Source(_Strict):
    doi: str | None = None
    # where the miner read the DOI: the PDF's metadata or XMP, its first page outside the
    # references, the JATS <article-id>; "none" = it looked and found none (never a guess)
    doi_from: Literal["metadata", "xmp", "first_page", "jats", "none"] | None = None
    title: str | None = None
    journal: str | None = None
    year: int | None = None
    figure: str | None = None  # figure label as printed, e.g. "Fig. 3"
    panel: str | None = None  # panel letter, e.g. "b"
    licence: str | None = None  # e.g. "CC BY 4.0"
    url: str | None = None
    file: str | None = None  # source file the image came from (nxml/pdf), relative
    page: int | None = None  # PDF page, 1-based
    # the raw image or field a tile was cut from, named uniquely across the corpus (a path, a URL,
    # the raw file's sha256): tiles of one parent share a split and never straddle train and gold
    parent: str | None = None


class ManifestRecord(_Strict):
    id: str = Field(pattern=SHA256_RE)
    image: str  # path relative to the manifest file
    source: Source = Field(default_factory=Source)
    caption: str = ""
    excerpts: list[str] = Field(default_factory=list)


class Labeler(_Strict):
    kind: Literal["gpt", "human", "synthetic", "aggregate"]  # aggregate: `fracdata labels aggregate`
    model: str | None = None  # requested model, e.g. "gpt-5.2"
    prompt_version: str | None = None
    taxonomy_version: int | None = None
    effort: str | None = None
    # audit fields written by `fracdata label`
    response_model: str | None = None  # model name the API returned
    request_id: str | None = None
    usage: dict[str, int] | None = None
    created: str | None = None  # ISO-8601 UTC
    cache_key: str | None = None
    annotator: str | None = None  # human labels: who decided (the Label Studio user, `fracdata review`)
    # what the request carried, of "image", "caption", "excerpts" (`fracdata label`; fracbench shows it)
    inputs: list[str] | None = None
    sources: list[str] | None = None  # aggregate labels: the labellers combined (fracdata labels aggregate)


class LabelRecord(_Strict):
    id: str = Field(pattern=SHA256_RE)
    features: list[str]  # taxonomy ids (names are normalised by the builder)
    labeler: Labeler
    rationale: str | None = None
    evidence: dict[str, str] | None = None  # feature id -> what in the image shows it
    image_type: str | None = None
    material: str | None = None
    magnification: str | None = None


class GoldRecord(_Strict):
    id: str = Field(pattern=SHA256_RE)
    image: str  # path relative to the gold file
    features: list[str]
    annotators: dict[str, list[str]] | None = None  # {name: [features]}; two or more give Cohen's kappa
    note: str | None = None
    source: Source | None = None  # the paper it came from, as in the manifest (at least `doi`)
    # the text the training labels were written from, as in the manifest: `fracdata label --gold`
    # sends it, so the teacher's row sees what the teacher saw when it labelled the training images
    caption: str | None = None
    excerpts: list[str] | None = None

    @field_validator("annotators")
    @classmethod
    def _at_least_one(cls, v):
        if v is not None and len(v) < 1:
            raise ValueError("annotators must name at least one annotator (or leave the key out)")
        return v


class Reject(_Strict):
    stage: str
    file: str
    line: int | None = None
    id: str | None = None
    reason: str
    detail: str | None = None
    file_sha256: str | None = None  # analyze: the bytes of a file refused before it had a pixel id

    @model_validator(mode="before")
    @classmethod
    def _writable(cls, data):
        """A reject describes hostile input: its text is escaped so that it can always be written."""
        if isinstance(data, dict):
            return {k: escape(v) if isinstance(v, str) else v for k, v in data.items()}
        return data

    @field_validator("reason")
    @classmethod
    def _declared(cls, v):
        if v not in REASONS:
            raise ValueError(f"{v!r} is not a declared reject reason (fracdata.records.REASONS)")
        return v


def normalise_doi(doi: str | None) -> str | None:
    """'https://doi.org/10.1/AbC ' -> '10.1/abc' (DOIs are case-insensitive); None or '' -> None."""
    if not doi:
        return None
    d = doi.strip().lower()
    for prefix in ("https://doi.org/", "http://doi.org/", "https://dx.doi.org/", "http://dx.doi.org/", "doi:"):
        d = d.removeprefix(prefix)
    return d.strip() or None


def group_key(source, fallback: str) -> str:
    """Paper identity: doi, else title, else url, else source file, else the fallback."""
    if source is not None:
        if normalise_doi(source.doi):
            return "doi:" + normalise_doi(source.doi)
        if source.title:
            return "title:" + " ".join(source.title.lower().split())
        if source.url:
            return "url:" + source.url.strip()
        if source.file:
            return "file:" + source.file.strip()
    return fallback


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def json_lines(path: str | Path) -> Iterator[tuple[int, dict | None, str | None, str | None]]:
    """(line number, object, None, None) for each non-blank line holding a JSON object, else
    (line number, None, what, detail) with what = "utf8", "json" or "shape". Bytes split at "\n"
    only (str.splitlines also breaks at U+2028 and U+0085, which JSON strings may hold), so every
    reader and every fingerprint sees the same lines; read_jsonl and fracbench's predictions
    reader share it. A UTF-8 byte-order mark at the start of the file (Windows editors, Excel's
    "UTF-8" export) is not part of line 1, as in every other reader of JSONL and CSV here."""
    with open(path, "rb") as f:  # bytes: one non-UTF-8 line is a reject, not a crash of the whole read
        for lineno, raw in enumerate(f, 1):
            if lineno == 1:
                raw = raw.removeprefix(BOM)
            if not raw.strip():
                continue
            try:
                obj = loads(raw.decode("utf-8"))
            except UnicodeDecodeError as e:
                yield lineno, None, "utf8", f"not UTF-8 (byte {e.start})"
            except json.JSONDecodeError as e:
                yield lineno, None, "json", e.msg
            else:
                if isinstance(obj, dict):
                    yield lineno, obj, None, None
                else:
                    yield lineno, None, "shape", f"a JSON {type(obj).__name__}, not an object"


def read_jsonl(path: str | Path, model: type[BaseModel], stage: str) -> Iterator[tuple[int, BaseModel | Reject]]:
    """Yield (line number, record) or (line number, Reject) for every non-blank line.

    A malformed line is a reject with the reason, never a silent skip or a crash, so
    kept + rejected = read holds for the caller. Text UTF-8 cannot encode (a `\\ud800` escape)
    is the reject `unencodable_text` (fracdata/untrusted.py): kept records can always be written.
    """
    path = Path(path)
    for lineno, obj, _, why in json_lines(path):
        if obj is None:
            yield lineno, Reject(stage=stage, file=str(path), line=lineno, reason="malformed_json", detail=why)
            continue
        rid = obj.get("id") if isinstance(obj.get("id"), str) else None
        problem = text_problem(obj)
        if problem is not None:
            yield lineno, Reject(stage=stage, file=str(path), line=lineno, reason=UNENCODABLE, detail=problem, id=rid)
            continue
        try:
            yield lineno, model.model_validate(obj)
        except ValidationError as e:
            first = e.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "record"
            yield lineno, Reject(stage=stage, file=str(path), line=lineno, id=rid,
                                 reason="invalid_record", detail=f"{where}: {first['msg']}")


def dump_jsonl(records, path: str | Path, durable: bool = False) -> int:
    """Write records (pydantic models or dicts) as compact, key-sorted JSON lines; return count.

    Atomic (fracdata.files.atomic_path): the file holds all lines or its old contents, never a part.
    """
    from fracdata.files import atomic_path

    n = 0
    with atomic_path(path, durable) as tmp, open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            obj = rec.model_dump(exclude_none=True) if isinstance(rec, BaseModel) else rec
            f.write(json.dumps(obj, ensure_ascii=False, sort_keys=True) + "\n")
            n += 1
    return n
