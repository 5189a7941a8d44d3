"""calibration.json: the map from a checkpoint's feature scores to calibrated probabilities.

`fracdata calibrate` fits it on the dataset's val split and writes it beside the checkpoint (in
the adapter's folder for a LoRA entry, else in the model's); `fracdata analyze`, `fracdata
serve` and `fracbench infer` apply it. Per feature f, on the logit of the score p_f
(fracdata/inference/feature_probs.py):

    calibrated p = sigmoid(exp(s + s_f) * logit(p_f) + (b + b_f))

a Platt scaling per feature (slope and bias) whose per-feature parts s_f, b_f are shrunk toward
the shared s, b (fracdata/calibrate/fit.py): a feature with few val positives gets the shared
map. The slope is exp(...) > 0, so calibration never reverses the model's order within a
feature; exp(s) = 1 / temperature. Applying it is pure arithmetic (numpy), no model needed.
"""

from __future__ import annotations

import math
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from fracdata.errors import FracdataError

FILE = "calibration.json"
SCHEMA = "fracdata-calibration"
METHOD = "platt-per-feature-shrunk"
SCORE = "next-item-v1"  # which score it maps: feature_probs.py's p_f; bump both when that changes
LOGIT_CLIP = 1e-12  # logit(p) for p in [1e-12, 1 - 1e-12]: +-27.6, so an underflowed score stays finite


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PlattMap(_Strict):
    slope: float = Field(gt=0)  # on logit(p_f); 1 / temperature
    bias: float
    positives: int = 0  # val images whose label has the feature (what the fit saw)
    negatives: int = 0


class FittedOn(_Strict):
    dataset_dir: str
    build_input_hash: str | None = None  # the dataset's build.json input hash
    val_file: str  # val.json
    val_sha256: str
    val_images: int
    val_ids_sha256: str  # sha256 of the sorted val image ids, one per line
    labels: str  # what the targets were


class Calibration(_Strict):
    schema_name: str = Field(SCHEMA, pattern=f"^{SCHEMA}$")
    schema_version: int = 1
    method: str = METHOD
    score: str = SCORE
    shared: PlattMap
    features: dict[str, PlattMap]
    shrinkage: float  # the L2 weight on (s_f, b_f), chosen by cross-validation
    cv: dict  # {"folds", "grid", "logloss": {lambda: mean held-out log-loss per cell}, "raw_logloss"}
    fitted_on: FittedOn
    model: dict  # entry name, path, adapter, prompt sha256
    taxonomy: dict  # version, sha256
    created: str
    fracdata: str

    def apply(self, logprobs: dict[str, float]) -> dict[str, float]:
        """{feature: calibrated probability} for {feature: log p_f}."""
        out = {}
        for f, lp in logprobs.items():
            m = self.features.get(f, self.shared)
            u = m.slope * logit_of_logprob(lp) + m.bias
            out[f] = round(_sigmoid(u), 6)
        return out

    def describe(self) -> str:
        o = self.fitted_on
        return (f"{self.method} fitted on {o.val_images} val images of {o.dataset_dir}, val.json sha256 "
                f"{o.val_sha256[:12]}; targets: {o.labels}")


def _sigmoid(u: float) -> float:
    return 1 / (1 + math.exp(-u)) if u >= 0 else math.exp(u) / (1 + math.exp(u))


def logit_of_logprob(lp: float) -> float:
    """logit(p) from log p, stable at both ends: log p - log(1 - p), p clipped to [1e-12, 1 - 1e-12]."""
    p = min(max(math.exp(lp), LOGIT_CLIP), 1 - LOGIT_CLIP)
    return math.log(p) - math.log1p(-p)


def calibration_path(path: Path, adapter: Path | None) -> Path:
    """Where a checkpoint's calibration lives: beside the adapter when there is one."""
    return Path(adapter if adapter is not None else path) / FILE


def load_calibration(path: Path, taxonomy, prompt_sha256: str | None = None) -> Calibration | None:
    """The calibration at `path`, None when there is none; an error when it does not fit this
    taxonomy or prompt (a stale file must not pass for a calibration)."""
    import json

    if not path.is_file():
        return None
    try:
        cal = Calibration.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as e:
        raise FracdataError(f"{path}: not a calibration written by `fracdata calibrate` ({type(e).__name__}: "
                            f"{str(e).splitlines()[0]}); fit it again or move it away") from None
    if cal.score != SCORE:
        raise FracdataError(f"{path}: calibrates score {cal.score!r}, this fracdata computes {SCORE!r}: run fracdata calibrate again")
    if cal.taxonomy.get("sha256") != taxonomy.sha256:
        raise FracdataError(f"{path}: fitted for taxonomy sha256 {str(cal.taxonomy.get('sha256'))[:12]}, this is "
                            f"{taxonomy.sha256[:12]}: run fracdata calibrate again")
    if prompt_sha256 is not None and cal.model.get("prompt_sha256") not in (None, prompt_sha256):
        raise FracdataError(f"{path}: fitted with another prompt (sha256 {cal.model['prompt_sha256'][:12]}, this "
                            f"one {prompt_sha256[:12]}): run fracdata calibrate with this entry")
    return cal
