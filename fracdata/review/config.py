"""The labelling view (Label Studio XML) made from the taxonomy, and an annotation's result read back.

One `Choices` control per taxonomy group (named after the group, in taxonomy order), each
`Choice` with value = the taxonomy id (what Label Studio stores and exports), html = the display
name (what the annotator reads) and hint = the one-line visual description (on hover). A
`flags` control holds "not a fracture surface" and "unsure"; a `notes` text area is optional.
Reading a result back is strict: a value that is not a taxonomy id or flag, or a control this
view does not have, makes the whole annotation an `unknown_choice` reject (an edited view must
not turn into silently dropped features).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib import resources

FLAGS_CONTROL = "flags"
NOTES_CONTROL = "notes"
NOT_FRACTURE = "not_fracture_surface"
UNSURE = "unsure"
FLAGS = (
    (NOT_FRACTURE, "not a fracture surface", "the image is not a fractograph (micrograph, schematic, plot, specimen photo)"),
    (UNSURE, "unsure", "you cannot decide for this image: it is left to the adjudicator and out of kappa"),
)
FLAG_VALUES = {v for v, _, _ in FLAGS}


def label_config(taxonomy, kind: str, suspects: bool = False) -> str:
    """The Label Studio labelling configuration (XML) for a review of this kind; `suspects`: an
    audit of suspect labels, whose view also shows which labels are under suspicion (`$suspect`)."""
    import jinja2

    if {FLAGS_CONTROL, NOTES_CONTROL, "image", "paper", "caption", "excerpts"} & set(taxonomy.groups):
        raise ValueError(f"taxonomy group names {sorted(taxonomy.groups)} clash with the view's own control names")
    groups = [{"name": g, "title": g.capitalize(), "features": [f for f in taxonomy.features if f.group == g]}
              for g in taxonomy.groups]
    text = resources.files("fracdata").joinpath("templates/review_config.xml.j2").read_text()
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(text).render(
        kind=kind, suspects=suspects, taxonomy_version=taxonomy.version, groups=[g for g in groups if g["features"]], flags=FLAGS,
        flags_control=FLAGS_CONTROL, notes_control=NOTES_CONTROL,
        flags_header="Not a fracture surface? Unsure? (otherwise leave empty)")


def config_sha256(xml: str) -> str:
    return hashlib.sha256(xml.encode()).hexdigest()


@dataclass(frozen=True)
class Answer:
    """What one annotation says about one image."""

    features: tuple[str, ...]  # taxonomy ids, taxonomy order
    not_fracture: bool
    unsure: bool
    notes: str | None

    @property
    def usable(self) -> bool:
        """A feature set that can be compared (kappa, agreement): not unsure, a fracture surface."""
        return not self.unsure and not self.not_fracture

    def describe(self) -> str | list[str]:
        if self.unsure:
            return "unsure"
        if self.not_fracture:
            return "not a fracture surface"
        return list(self.features)


def read_result(result, taxonomy) -> tuple[Answer | None, str]:
    """(Answer, "") or (None, why) for a Label Studio annotation's `result` list."""
    if not isinstance(result, list):
        return None, "result is not a list"
    groups = set(taxonomy.groups)
    features, flags, notes = set(), set(), []
    for item in result:
        if not isinstance(item, dict):
            return None, "a result item is not an object"
        control, value = item.get("from_name"), item.get("value") or {}
        if not isinstance(value, dict):
            return None, f"control {control!r}: value is not an object"
        if control == NOTES_CONTROL and item.get("type") == "textarea":
            texts = value.get("text", [])
            notes += [t for t in (texts if isinstance(texts, list) else [texts]) if isinstance(t, str)]
            continue
        if item.get("type") != "choices" or (control not in groups and control != FLAGS_CONTROL):
            return None, f"control {control!r} ({item.get('type')}) is not in this review's labelling view"
        picked = value.get("choices", [])
        if not isinstance(picked, list) or not all(isinstance(c, str) for c in picked):
            return None, f"control {control!r}: choices is not a list of strings"
        for choice in picked:
            if control == FLAGS_CONTROL:
                if choice not in FLAG_VALUES:
                    return None, f"{choice!r} is not a flag of this view ({', '.join(sorted(FLAG_VALUES))})"
                flags.add(choice)
            elif choice in taxonomy.by_id and taxonomy.by_id[choice].group == control:
                features.add(choice)
            else:
                return None, (f"{choice!r} is not a taxonomy v{taxonomy.version} id of group {control!r}"
                              " (was the labelling view edited in Label Studio?)")
    note = "\n".join(t.strip() for t in notes if t.strip()) or None
    return Answer(tuple(taxonomy.sort(features)), NOT_FRACTURE in flags, UNSURE in flags, note), ""


def prediction(features, taxonomy, model_version: str) -> dict:
    """A Label Studio prediction (pre-annotation) holding these features, one result per group."""
    result, known = [], taxonomy.sort(f for f in features if f in taxonomy.by_id)
    for g in taxonomy.groups:
        chosen = [f for f in known if taxonomy.by_id[f].group == g]
        if chosen:
            result.append({"from_name": g, "to_name": "image", "type": "choices", "value": {"choices": chosen}})
    return {"model_version": model_version, "result": result}
