"""A Label Studio JSON export (file or API, the same shape) -> one decision per (image id, person).

Joined by the image id each task carries (`data.fracdata_id`), never by file name or order.
Every submitted annotation read is kept or rejected with a reason (kept + rejected = read):
  other_review         the task belongs to another fracdata review (data.fracdata_review)
  unknown_id           the task's image id is not in this review (or the task has none)
  annotation_skipped   the annotator pressed Skip (was_cancelled)
  unknown_choice       a value or control that is not in this review's labelling view
  duplicate_annotator  the same person annotated the same image more than once: all of that
                       person's annotations of it are rejected, since which one they meant is unknown
  unencodable_text     an annotation holding text UTF-8 cannot encode (a `\\ud800` escape): it could
                       never be written
An export none of whose tasks belongs to this review is an error (an export of another project).
Drafts (not submitted) and predictions are not annotations and are not read.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from fracdata.errors import FracdataError
from fracdata.records import Reject
from fracdata.review.config import Answer, read_result
from fracdata.untrusted import REASON as UNENCODABLE, loads, text_problem

STAGE = "review"


@dataclass(frozen=True)
class Decision:
    id: str
    annotator: str
    answer: Answer
    annotation: int | None  # Label Studio's annotation id, for rejects and provenance
    created: str | None  # when it was last updated (ISO-8601): the label's `labeler.created`
    submitted: str | None = None  # when it was first submitted: which of two reviews came first


def load_export(path: Path) -> list:
    if not path.is_file():
        raise FracdataError(f"{path}: export file not found")
    try:
        data = loads(path.read_bytes().decode("utf-8-sig"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise FracdataError(f"{path}: not valid JSON ({e}): export the project as JSON") from None
    return data


def _completed_by(ann: dict) -> tuple[int | None, str | None]:
    who = ann.get("completed_by")
    if isinstance(who, dict):
        return who.get("id"), who.get("email")
    return (who if isinstance(who, int) else None), None


def read_export(tasks, review, taxonomy, where: str, users: dict[int, str], names: dict[str, str]):
    """(decisions, rejects, read) for the export `tasks` of `review`; `where` names the source in messages."""
    if not isinstance(tasks, list) or any(not isinstance(t, dict) or not isinstance(t.get("data"), dict) for t in tasks):
        raise FracdataError(f"{where}: not a Label Studio JSON export (a list of tasks with 'data'): "
                            "export the project as JSON (not JSON-MIN or CSV)")
    uids = Counter(t["data"].get("fracdata_review") for t in tasks)
    if tasks and review.uid not in uids:
        found = ", ".join(str(u) for u in uids) or "none"
        raise FracdataError(f"{where}: its tasks belong to review {found}, not {review.uid} (the review.json given): "
                            "this is an export of another project")
    known = {it.id for it in review.items}
    rejects: list[Reject] = []
    kept: dict[tuple[str, str], list[Decision]] = defaultdict(list)
    unnamed: set[int | None] = set()
    read = 0

    def reject(reason, detail, image_id=None):
        rejects.append(Reject(stage=STAGE, file=where, id=image_id, reason=reason, detail=detail))

    for t in tasks:
        data = t["data"]
        image_id = data.get("fracdata_id") if isinstance(data.get("fracdata_id"), str) else None
        anns = t.get("annotations") or []
        if not isinstance(anns, list) or not all(isinstance(a, dict) for a in anns):
            raise FracdataError(f"{where}: task {t.get('id')}: 'annotations' is not a list of objects "
                                "(not a Label Studio JSON export)")
        for ann in anns:
            read += 1
            uid_, email = _completed_by(ann)
            email = email or users.get(uid_)
            name = names.get(str(uid_)) or (names.get(email) if email else None) or email
            what = f"task {t.get('id')} annotation {ann.get('id')} by {name or f'user {uid_}'}"
            problem = text_problem(ann)
            if problem is not None:
                reject(UNENCODABLE, f"{what}: {problem}", image_id)
            elif data.get("fracdata_review") != review.uid:
                reject("other_review", f"{what}: task of review {data.get('fracdata_review')}", image_id)
            elif image_id not in known:
                reject("unknown_id", f"{what}: image id {image_id or '(none)'} is not in this review", image_id)
            elif ann.get("was_cancelled"):
                reject("annotation_skipped", f"{what}: skipped", image_id)
            else:
                answer, why = read_result(ann.get("result"), taxonomy)
                if answer is None:
                    reject("unknown_choice", f"{what}: {why}", image_id)
                elif name is None:
                    unnamed.add(uid_)
                else:
                    kept[(image_id, name)].append(Decision(image_id, name, answer, ann.get("id"),
                                                           ann.get("updated_at") or ann.get("created_at"),
                                                           ann.get("created_at")))
    if unnamed:
        ids = ", ".join(str(u) for u in sorted(unnamed, key=str))
        raise FracdataError(f"{where}: annotations by Label Studio user ids {ids} have no email in the export: "
                            "pass --annotator ID=NAME for each (the Organization page lists the ids)")
    decisions = []
    for (image_id, name), ds in kept.items():
        if len(ds) > 1:
            for d in ds:
                reject("duplicate_annotator", f"annotation {d.annotation} by {name}: {name} annotated this image "
                       f"{len(ds)} times (annotations {', '.join(str(x.annotation) for x in ds)}); delete all but one",
                       image_id)
        else:
            decisions.append(ds[0])
    decisions.sort(key=lambda d: (d.id, d.annotator))
    return decisions, rejects, read
