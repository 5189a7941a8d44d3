"""Lay out one synthetic paper as a PDF with reportlab (BSD; the `papers` extra), as publishers do.

Page 1 carries the journal line in the running header, the title, authors and abstract, the
running footer (received/accepted dates) and wherever the spec puts them: the article's own DOI
(header, footer, the information dictionary, XMP, a `https://doi.org/` or Crossmark link, an
IEEE-style placeholder, or nowhere) and its licence (footer, under the abstract, XMP, a closing
Open Access statement before the references). The body cites each figure; figures are one
embedded image (a single fractograph or a whole sheet of panels, PNG or JPEG) or one image per
panel with titles above, sub-captions below or letters on top drawn as text; the references
close the paper, numbered, each with its DOI (placeholders included).
"""

from __future__ import annotations

import io
from pathlib import Path

from PIL import Image
from reportlab import rl_config
from reportlab.lib.utils import ImageReader, simpleSplit
from reportlab.pdfbase.pdfdoc import XMP
from reportlab.pdfgen import canvas

PAGE_W, PAGE_H, MARGIN = 595.0, 842.0, 50.0  # A4 in points
TOP, BOTTOM = PAGE_H - 95, 110.0  # the body area between the running header and footer
PT_PER_PX = 0.5  # figures printed at 144 dpi


def _image_reader(pixels, jpeg: bool):
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="JPEG" if jpeg else "PNG", quality=88)
    buf.seek(0)
    return ImageReader(buf)


class _Flow:
    """A y cursor over the body area; a new page when a block does not fit."""

    def __init__(self, c, running: str):
        self.c, self.running, self.page, self.y = c, running, 1, TOP

    def need(self, height: float) -> None:
        if self.y - height < BOTTOM:
            self.c.showPage()
            self.page += 1
            self.c.setFont("Helvetica", 7)
            self.c.drawString(MARGIN, PAGE_H - 40, self.running)
            self.y = PAGE_H - 70

    def text(self, text: str, size: float = 9.0, font: str = "Helvetica", after: float = 8.0, indent: float = 0.0,
             hang: float = 0.0) -> None:
        width = PAGE_W - 2 * MARGIN - indent
        lines = simpleSplit(text, font, size, width - hang)
        for i, line in enumerate(lines):
            self.need(size * 1.25)
            self.c.setFont(font, size)
            self.c.drawString(MARGIN + indent + (hang if i else 0), self.y - size, line)
            self.y -= size * 1.25
        self.y -= after


def _height(fig: dict) -> float:
    """Points a figure and its caption take on the page."""
    width = PAGE_W - 2 * MARGIN
    cap_h = 10 * (1 + len(fig["caption"]) // 110) + 14
    h_px, w_px = fig["pixels"][0].shape
    if fig["layout"] != "images":
        return min(width, w_px * PT_PER_PX) * h_px / w_px + 10 + cap_h
    w = min(170.0, (width - (fig["cols"] - 1) * 8.0) / fig["cols"])
    row_h = (11.0 if fig["titles"] else 0.0) + w * h_px / w_px + (12.0 if fig["letters"] == "subcaptions" else 0.0) + 8.0
    return fig["rows"] * row_h + 2 + cap_h


def _draw_figure(flow: _Flow, fig: dict) -> int:
    """One figure and its caption; returns the page it went on."""
    c = flow.c
    width = PAGE_W - 2 * MARGIN
    flow.need(_height(fig))
    if fig["layout"] != "images":  # one embedded image
        pixels = fig["pixels"][0]
        h_px, w_px = pixels.shape
        w = min(width, w_px * PT_PER_PX)
        h = w * h_px / w_px
        x = MARGIN + (width - w) / 2
        c.drawImage(_image_reader(pixels, fig["jpeg"]), x, flow.y - h, width=w, height=h)
        flow.y -= h + 10
    else:  # one image per panel: titles above, sub-captions below, or letters drawn on them as text
        cols, rows = fig["cols"], fig["rows"]
        gap = 8.0
        w = min(170.0, (width - (cols - 1) * gap) / cols)
        h_px, w_px = fig["pixels"][0].shape
        h = w * h_px / w_px
        title_h = 11.0 if fig["titles"] else 0.0
        sub_h = 12.0 if fig["letters"] == "subcaptions" else 0.0
        row_h = title_h + h + sub_h + gap
        x_left = MARGIN + (width - (cols * w + (cols - 1) * gap)) / 2
        for i, pixels in enumerate(fig["pixels"]):
            r, k = divmod(i, cols)
            x, top = x_left + k * (w + gap), flow.y - r * row_h
            c.setFont("Helvetica", 7.5)
            if fig["titles"]:
                c.drawCentredString(x + w / 2, top - 8, fig["panel_titles"][i])
            c.drawImage(_image_reader(pixels, fig["jpeg"]), x, top - title_h - h, width=w, height=h)
            letter = "abcdefghijklmnopqrstuvwxyz"[i]
            if fig["letters"] == "subcaptions":
                label = f"({letter}) {fig['panel_titles'][i]}" if fig["panel_titles"] else f"({letter})"
                c.drawCentredString(x + w / 2, top - title_h - h - 9, label)
            elif fig["letters"] == "text":  # a white letter printed on the image's corner
                c.setFillGray(1)
                c.setFont("Helvetica-Bold", 10)
                c.drawString(x + 4, top - title_h - 12, f"({letter})")
                c.setFillGray(0)
        flow.y -= rows * row_h + 2
    page = flow.page
    flow.text(fig["caption"], size=8, after=14)
    return page


def _xmp(doi: str | None, licence_url: str | None, title: str) -> str:
    parts = [f'<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title>']
    if doi:
        parts += [f"<prism:doi>{doi}</prism:doi>", f"<dc:identifier>doi:{doi}</dc:identifier>"]
    if licence_url:
        parts.append(f"<xmpRights:WebStatement>{licence_url}</xmpRights:WebStatement>")
    return ('<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
            '<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:prism="http://prismstandard.org/namespaces/basic/2.0/" '
            'xmlns:xmpRights="http://ns.adobe.com/xap/1.0/rights/">' + "".join(parts)
            + '</rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>')


def write_pdf(path: Path, paper: dict) -> dict:
    """Write `paper` (papers.py: text, figures, placements) to `path`; returns where things went."""
    doi, at, lic = paper["doi"], paper["doi_at"], paper["licence_at"]
    a85, rl_config.useA85 = rl_config.useA85, 0  # Flate image streams, as publishers write them
    try:
        c = canvas.Canvas(str(path), pagesize=(PAGE_W, PAGE_H), invariant=1)
        c.setTitle(paper["title"])
        c.setAuthor(", ".join(paper["authors"]))
        c.setSubject(f"{paper['journal_line']}. doi:{doi}" if at == "subject" else paper["journal"])
        if at == "xmp" or lic == "xmp":
            text = _xmp(doi if at == "xmp" else None, paper["licence_url"] if lic == "xmp" else None, paper["title"])
            c._doc.Catalog.Metadata = XMP(creator=lambda doc: text)  # reportlab's own XMP stream
        flow = _Flow(c, f"{paper['authors'][0]} et al. / {paper['journal_line']}")
        c.setFont("Helvetica", 7)
        c.drawString(MARGIN, PAGE_H - 40, paper["journal_line"])  # running header
        if at == "header":
            c.drawRightString(PAGE_W - MARGIN, PAGE_H - 40, f"https://doi.org/{doi}")
        elif at == "placeholder":  # an IEEE template's placeholder, never a DOI
            c.drawRightString(PAGE_W - MARGIN, PAGE_H - 40, "Digital Object Identifier 10.1109/ACCESS.2024.0000000")
        footer = [f"Received {paper['received']}; accepted {paper['accepted']}"]
        if at == "footer":
            footer.insert(0, f"https://doi.org/{doi}")
        if lic in ("footer", "nc", "none"):
            footer.append(paper["licence_text"])
        y = 30 + 9 * sum(len(simpleSplit(t, "Helvetica", 6.5, PAGE_W - 2 * MARGIN)) for t in footer)
        for t in footer:  # running footer
            for line in simpleSplit(t, "Helvetica", 6.5, PAGE_W - 2 * MARGIN):
                c.setFont("Helvetica", 6.5)
                c.drawString(MARGIN, y, line)
                y -= 9
        flow.text(paper["title"], size=14, font="Helvetica-Bold", after=6)
        flow.text(", ".join(paper["authors"]), size=9, after=6)
        if at in ("link", "crossmark"):  # a button whose text names no DOI; the link holds it
            label = "View article online" if at == "link" else "Check for updates"
            uri = (f"https://doi.org/{doi}" if at == "link"
                   else f"https://crossmark.crossref.org/dialog/?doi={doi}&domain=pdf&date_stamp=2024-01-01")
            c.setFont("Helvetica", 8)
            c.drawString(MARGIN, flow.y - 8, label)
            c.linkURL(uri, (MARGIN, flow.y - 10, MARGIN + 90, flow.y), relative=0, thickness=0)
            flow.y -= 16
        flow.text("Abstract", size=9, font="Helvetica-Bold", after=2)
        flow.text(paper["abstract"], size=9, after=8)
        if lic == "abstract":
            flow.text(paper["licence_text"], size=8, after=8)
        flow.text(paper["introduction"])
        pages, pending = {}, []
        for k, para in enumerate(paper["paragraphs"]):
            flow.text(para)
            if k < len(paper["figures"]):
                pending.append(paper["figures"][k])
            # figures float: one that does not fit the rest of this page waits for the next
            # paragraphs (as typesetters place them), unless nothing is left to fill the page
            while pending and (flow.y - _height(pending[0]) >= BOTTOM or k == len(paper["paragraphs"]) - 1):
                fig = pending.pop(0)
                pages[fig["label"]] = _draw_figure(flow, fig)
        if lic == "closing":
            flow.text(paper["licence_text"], size=8, after=10)
        flow.need(40)
        flow.text("References", size=10, font="Helvetica-Bold", after=4)
        refs_page = flow.page
        for i, ref in enumerate(paper["references"], 1):
            flow.text(f"[{i}] {ref}", size=7.5, after=2, hang=12)
        c.showPage()
        c.save()
    finally:
        rl_config.useA85 = a85
    if at == "metadata":  # a /doi key in the information dictionary (reportlab writes only the standard ones)
        from pypdf import PdfWriter

        w = PdfWriter(clone_from=str(path))
        w.add_metadata({"/doi": doi})
        w.write(str(path))
    return {"pages": flow.page, "figure_pages": [pages[f["label"]] for f in paper["figures"]],
            "references_page": refs_page}
