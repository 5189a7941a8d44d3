"""Shared helpers for the analyze/serve tests: model entries pointing at local stub servers, a
generalist responder that cites the evidence it is given, and small distinct images."""

from __future__ import annotations

import re
from pathlib import Path

from PIL import Image

from tests.support.openai_server import text_of

SPEC_ANSWER = "Features: river patterns, beach_marks, wibble"  # two ids (one by name) and an unknown term
GEN_KEY_ENV = "FRACDATA_TEST_GEN_KEY"
GEN_KEY = "sk-gen-secret-0042"
_EVIDENCE = re.compile(r"^- ([a-z0-9_]+) \(", re.M)


def spec_responder(kind, body):
    assert kind == "chat"
    return SPEC_ANSWER


def evidence_of(body) -> list[str]:
    """The feature ids listed in a generalist request's evidence block."""
    return _EVIDENCE.findall(text_of(body))


def gen_responder(kind, body):
    """A report that cites every evidence id in its first statement and names the first by
    name in the mechanism (citing it), as a careful model would."""
    assert kind == "responses"
    ev = evidence_of(body)
    first = ev[0] if ev else None
    return {"fracture_mode": {"text": "Fatigue crack growth followed by overload.", "cites": ev},
            "mechanism": {"text": f"Cyclic loading; the {first.replace('_', ' ') if first else 'surface'} show the "
                                  "growth direction.", "cites": [first] if first else []},
            "initiation_site": {"text": "Outside this field of view, toward the lower left.", "cites": []},
            "image_next": [{"region": "lower-left edge", "magnification": "500x",
                            "purpose": "find the origin", "cites": ev[-1:]}],
            "caveats": [{"text": "One image only.", "cites": []}]}


def spec_entry(folder: Path, base_url: str, name: str = "spec") -> str:
    p = folder / f"{name}.yaml"
    p.write_text(f"name: {name}\nkind: openai-compatible\nbase_url: {base_url}\nmodel: tiny-ft\nprompt: training\n"
                 "max_retries: 0\ntimeout_s: 20\ndecoding: {max_tokens: 64, temperature: 0}\n")
    return str(p)


def gen_entry(folder: Path, base_url: str, name: str = "gen", retries: int = 0) -> str:
    p = folder / f"{name}.yaml"
    p.write_text(f"name: {name}\nkind: openai-compatible\nbase_url: {base_url}\nmodel: gpt-5.5\n"
                 f"api_key_env: {GEN_KEY_ENV}\nmax_retries: {retries}\ntimeout_s: 20\n"
                 "decoding: {reasoning_effort: low}\n")
    return str(p)


def local_entry(folder: Path, model: Path, name: str = "tiny") -> str:
    p = folder / f"{name}.yaml"
    p.write_text(f"name: {name}\nkind: local\npath: {model}\nprompt: training\ndecoding: {{max_new_tokens: 8}}\n")
    return str(p)


def prices(folder: Path) -> str:
    """gpt-5.5 at $1/$10 per 1M tokens: the stub's fixed usage (1000 in, 200 cached, 300 out)
    costs (800 * 1 + 200 * 0.1 + 300 * 10) / 1e6 = $0.00382 per call."""
    p = folder / "prices.yaml"
    p.write_text("batch_discount: 0.5\nmodels:\n  gpt-5.5: {input: 1.0, cached_input: 0.1, output: 10.0}\n")
    return str(p)


def make_images(folder: Path, n: int, size=(96, 80)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        p = folder / f"img{i}.png"
        Image.new("RGB", (size[0] + 4 * i, size[1]), (30 + 40 * i, 200 - 30 * i, 9 * i)).save(p)
        out.append(p)
    return out
