"""An Analysis as files: `<id12>.json` (the record), `<id12>.md` (the report) and `<id12>.png`
(the image with the report beside it). Names are the first 12 hex digits of the content id:
2^48 names make a clash between two images of one folder vanishingly unlikely, and the full
id is inside every file.
"""

from __future__ import annotations

import json
import textwrap
from functools import lru_cache
from importlib import resources
from pathlib import Path

from fracdata.files import atomic_path, atomic_write_bytes
from fracdata.untrusted import shown

PANEL_W = 560  # px of report text beside the image
IMAGE_SIDE = 768  # the image is shown at most this many px on its long side
FONT_SIZE = 14
LINE_H = 18  # px per text line at FONT_SIZE
WRAP = 72  # characters per line: ~7.5 px per character at 14 px fits PANEL_W - margins


def printable(value):
    """`value` with control and bidi characters escaped (every expression of the report)."""
    return shown(value) if isinstance(value, str) else value


@lru_cache(maxsize=1)
def _md_template():
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True, finalize=printable)
    return env.from_string(resources.files("fracdata").joinpath("templates", "analyze_report.md.j2").read_text())


def render_markdown(a) -> str:
    g = a.generalist
    return _md_template().render(a=a, s=a.specialist, g=g, r=g.report if g else None).strip() + "\n"


def text_lines(a) -> list[str]:
    """The report as short plain lines for the PNG panel (same content as the Markdown, compact)."""
    from fracdata.analyze.schema import statements

    s, g = a.specialist, a.generalist
    more = f" (+{len(a.files) - 1} more files, same pixels)" if len(a.files) > 1 else ""
    out = [f"{Path(a.image).name}{more}  ({a.width}x{a.height})", f"id {a.id[:16]}...",
           ("NEEDS A PERSON" if a.needs_person else "no person needed") + f" at {a.review.threshold:.2f}", "",
           f"SPECIALIST {s.model} ({s.probability_kind} probabilities)"]
    shown = [f for f in s.probabilities or [] if f.listed or f.decision != "absent"]
    for f in shown:
        out.append(f"  {f.id}  {f.probability:.2f}  {f.decision}" + ("" if f.listed else "  (not listed)"))
    if s.probabilities is None:
        out += [f"  {f.id}  (no probability)" for f in s.features]
    if not s.features:
        out.append(f"  no taxonomy feature listed (answer {s.status})")
    out.append("")
    if g is None:
        out.append("GENERALIST: none (specialist findings only)")
    else:
        out.append(f"GENERALIST {g.model}")
        for where, text, cites in statements(g.report):
            out += textwrap.wrap(f"{where}: {text} [{', '.join(cites) or 'no feature'}]", WRAP,
                                 subsequent_indent="    ")
    if a.flags:
        out += ["", "FLAGS"]
        for f in a.flags:
            out += textwrap.wrap(f"{f.kind}: {f.detail}", WRAP, initial_indent="  ", subsequent_indent="    ")
    return out


def render_png(a, image, path: Path) -> None:
    """The image (fit into IMAGE_SIDE px) on the left, the report's lines on the right."""
    from PIL import Image, ImageDraw, ImageFont

    im = image.convert("RGB")
    im.thumbnail((IMAGE_SIDE, IMAGE_SIDE))
    lines = text_lines(a)
    h = max(im.height, 16 + LINE_H * len(lines))
    canvas = Image.new("RGB", (im.width + PANEL_W, h), "white")
    canvas.paste(im, (0, 0))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=FONT_SIZE)
    for i, line in enumerate(lines):
        draw.text((im.width + 12, 8 + LINE_H * i), printable(line), fill="black", font=font)
    canvas.save(path, format="PNG")


def write_record(a, out_dir: Path) -> dict[str, Path]:
    """Write `<id12>.json` and `.md` (atomically: a reader never sees half a report)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = out_dir / a.id[:12]
    paths = {"json": stem.with_suffix(".json"), "md": stem.with_suffix(".md")}
    atomic_write_bytes(paths["json"], (json.dumps(a.model_dump(mode="json"), indent=1, ensure_ascii=False) + "\n").encode())
    atomic_write_bytes(paths["md"], render_markdown(a).encode())
    return paths


def write_outputs(a, image, out_dir: Path) -> dict[str, Path]:
    """Write the three files (each atomically)."""
    paths = write_record(a, out_dir)
    paths["png"] = out_dir / (a.id[:12] + ".png")
    with atomic_path(paths["png"]) as tmp:
        render_png(a, image, tmp)
    return paths
