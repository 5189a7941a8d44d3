"""Make the screenshots in docs/review.md: the labelling view of each review kind, in headless Chromium.

    PYTHONPATH=. python docs/review/screenshots.py [--out docs/review]

Starts a real Label Studio (make label-studio's virtualenv, a temporary data dir), makes the
embedded synthetic corpus (fracdata synth), prepares and pushes a gold, an audit (--show-gpt)
and a manual review with `fracdata review`, signs an annotator up, and photographs the
labelling view each one shows (DevTools protocol: tests/support/cdp.py). PNGs are reduced to a
palette so that each stays small. Nothing leaves the machine.
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from fracdata.cli import main  # noqa: E402
from fracdata.synth.corpus import generate  # noqa: E402
from tests.support import label_studio as ls  # noqa: E402
from tests.support.cdp import chromium  # noqa: E402

# The view is drawn, the image decoded, and the project's instructions popped up (closed before the shot).
READY = ("document.body.innerText.includes('equiaxed dimples') && [...document.images].some(i => i.complete && "
         "i.naturalWidth > 0) && document.querySelector('[aria-label=\"Close modal\"]')")
CLOSE_INSTRUCTIONS = "document.querySelector('[aria-label=\"Close modal\"]').click();"


def tick(*names: str) -> str:
    """JS clicking the checkboxes whose labels read these display names (what an annotator does)."""
    return (f"for (const n of {json.dumps(list(names))}) {{ const l = [...document.querySelectorAll('label, span')]"
            ".find(e => e.childNodes.length && e.textContent.replace(/\\[.*?\\]/g, '').trim() === n);"
            " if (l) l.click(); }")


def label(name: str) -> str:
    """JS: the element showing a choice's display name."""
    return (f"[...document.querySelectorAll('label, span')].find(e => e.childNodes.length && "
            f"e.textContent.replace(/\\[.*?\\]/g, '').trim() === {json.dumps(name)})")


def scroll_to(text: str) -> str:
    return (f"const h = [...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].find(e => e.textContent.trim() === {json.dumps(text)});"
            " if (h) h.scrollIntoView({block: 'start'});")


def small_png(data: bytes) -> bytes:
    from PIL import Image

    im = Image.open(io.BytesIO(data)).convert("RGB").quantize(colors=64, method=Image.Quantize.MEDIANCUT)
    buf = io.BytesIO()
    im.save(buf, "PNG", optimize=True)
    return buf.getvalue()


def run(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        generate(tmp / "synth", seed=0, n=60, n_gold=10, n_manual=6)
        with ls.label_studio(tmp / "server") as srv:
            token = ls.personal_access_token(srv)
            server = ["--push", "--url", srv.url, "--token", token]
            synth = tmp / "synth"
            assert main(["review", "gold", "--manifest", str(synth / "manifest.jsonl"), "--n", "6",
                         "--out", str(tmp / "gold"), *server]) == 0
            assert main(["review", "audit", "--labels", str(synth / "labels.jsonl"), "--manifest",
                         str(synth / "manifest.jsonl"), "--n", "8", "--show-gpt", "--out", str(tmp / "audit"), *server]) == 0
            assert main(["review", "manual", "--folder", str(synth / "manual"), "--out", str(tmp / "manual"), *server]) == 0
            invite = ls.admin(srv).get("/api/invite").json()["invite_url"]
            session = ls.signup(srv.url, "annotator@lab.example", "annotator-pass-1", invite)
            cookies = dict(session.cookies.items())
            project = {k: json.loads((tmp / k / "review.json").read_text())["server"]["project"]
                       for k in ("gold", "audit", "manual")}
            shots = {
                "gold_view.png": (project["gold"], CLOSE_INSTRUCTIONS, None),
                "gold_choices.png": (project["gold"], CLOSE_INSTRUCTIONS + tick("fatigue striations", "beach marks",
                                                                                "secondary cracks") + scroll_to("Ductile"),
                                     label("fish-eye")),
                "audit_prefilled.png": (project["audit"], CLOSE_INSTRUCTIONS + scroll_to("Ductile"), None),
                "manual_view.png": (project["manual"], CLOSE_INSTRUCTIONS, None),
            }
            for name, (pid, before, hover) in shots.items():
                with chromium(tmp / f"profile-{name}") as browser:
                    png = browser.screenshot(f"{srv.url}/projects/{pid}/data?labeling=1", cookies, READY,
                                             size=(1400, 1000), before=before, hover=hover, settle=2.5)
                data = small_png(png)
                (out / name).write_bytes(data)
                print(f"wrote {out / name}: {len(data) / 1e3:.0f} kB")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "review"))
    run(Path(ap.parse_args().out))
