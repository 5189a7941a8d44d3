"""Write one synthetic paper as a PMC-style JATS article: `article.nxml` plus its figure files.

The licence goes wherever JATS puts it (`<license xlink:href>`, `<license-p>` prose only,
`ali:license_ref`, `<copyright-statement>` inside `<permissions>`, or outside it straight in
`<article-meta>` as NLM 2.x articles such as PLoS ONE 2007 do, a `<license>` outside
`<permissions>`), figures reproduced from other work carry figure-level permissions that are not
the article's, and the reference list cites DOIs in `<pub-id>` and `https://doi.org/` links.
"""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

CC_BY = "https://creativecommons.org/licenses/by/4.0/"
ALI = 'xmlns:ali="http://www.niso.org/schemas/ali/1.0/"'


def licence_xml(at: str, text: str, year: int) -> str:
    """The `<article-meta>` children that state the licence, for each placement."""
    t = escape(text)
    return {
        "license_href": f'<permissions><copyright-statement>\u00a9 {year} The Authors</copyright-statement>'
                        f'<license xlink:href="{CC_BY}" license-type="open-access"><license-p>{t}</license-p>'
                        "</license></permissions>",
        "license_p": f'<permissions><copyright-year>{year}</copyright-year><license license-type="open-access">'
                     f"<license-p>{t}</license-p></license></permissions>",
        "ali": f"<permissions {ALI}><copyright-statement>\u00a9 {year} The Authors</copyright-statement>"
               f"<ali:free_to_read/><ali:license_ref>{CC_BY}</ali:license_ref></permissions>",
        "copyright": f"<permissions><copyright-statement>{t}</copyright-statement><copyright-year>{year}"
                     "</copyright-year></permissions>",
        "copyright_outside": f"<copyright-statement>{t}</copyright-statement><copyright-year>{year}</copyright-year>",
        "license_outside": f'<copyright-year>{year}</copyright-year><license license-type="open-access" '
                           f'xlink:href="http://creativecommons.org/licenses/by/3.0/"><p>{t}</p></license>',
        "nc": f'<permissions><license xlink:href="https://creativecommons.org/licenses/by-nc-nd/4.0/">'
              f"<license-p>{t}</license-p></license></permissions>",
        "none": f"<permissions><copyright-statement>{t}</copyright-statement></permissions>",
    }[at]


# A figure reproduced from another paper: its own, stricter terms; never the article's licence.
FIG_PERMISSIONS = ('<permissions><copyright-statement>Reprinted from an earlier study.</copyright-statement>'
                   '<license xlink:href="https://creativecommons.org/licenses/by-nc-nd/4.0/"><license-p>CC BY-NC-ND'
                   "</license-p></license></permissions>")


def _ref(i: int, ref: dict) -> str:
    doi = f'<pub-id pub-id-type="doi">{escape(ref["doi"])}</pub-id>' if ref["doi"] else ""
    return (f'<ref id="R{i}"><label>{i}</label><element-citation publication-type="journal"><person-group '
            f'person-group-type="author"><name><surname>{escape(ref["surname"])}</surname><given-names>'
            f'{escape(ref["initials"])}</given-names></name></person-group><article-title>{escape(ref["title"])}'
            f'</article-title><source>{escape(ref["journal"])}</source><year>{ref["year"]}</year>{doi}'
            "</element-citation></ref>")


def write_jats(folder: Path, paper: dict) -> dict:
    """Write `paper` (papers.py) as folder/article.nxml plus its graphics; returns the hrefs written."""
    folder.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    body, hrefs = [f"<p>{escape(paper['introduction'])}</p>"], []
    for k, (para, fig) in enumerate(zip(paper["paragraphs"], paper["figures"] + [None] * len(paper["paragraphs"]))):
        body.append(f"<p>{para}</p>")  # paragraphs carry their <xref> already (papers.py)
        if fig is None:
            continue
        stem = f"{paper['name']}-g{k + 1:03d}"
        ext = ".jpg" if fig["jpeg"] else ".png"
        Image.fromarray(fig["pixels"][0]).save(folder / f"{stem}{ext}", quality=90)
        href = stem if k % 2 else f"{stem}{ext}"  # PMC writes hrefs without an extension
        hrefs.append(folder / f"{stem}{ext}")
        perms = FIG_PERMISSIONS if fig.get("reproduced") else ""
        body.append(f'<fig id="F{k + 1}"><label>{fig["label"]}</label><caption><p>{escape(fig["jats_caption"])}</p>'
                    f'</caption>{perms}<graphic xlink:href="{href}"/></fig>')
    doi = f'<article-id pub-id-type="doi">{paper["doi"]}</article-id>' if paper["doi_at"] == "article_id" else ""
    refs = "".join(_ref(i, r) for i, r in enumerate(paper["reference_records"], 1))
    xml = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE article PUBLIC "-//NLM//DTD Journal Publishing DTD v2.3 20070202//EN" "journalpublishing.dtd">
<article xmlns:xlink="http://www.w3.org/1999/xlink" article-type="research-article">
<front>
<journal-meta><journal-title>{escape(paper["journal"])}</journal-title></journal-meta>
<article-meta>
<article-id pub-id-type="pmc">{paper["pmc"]}</article-id>{doi}
<title-group><article-title>{escape(paper["title"])}</article-title></title-group>
<pub-date pub-type="epub"><year>{paper["year"]}</year></pub-date>
{licence_xml(paper["licence_at"], paper["licence_text"], paper["year"])}
<abstract><p>{escape(paper["abstract"])}</p></abstract>
</article-meta>
</front>
<body><sec><title>Results</title>{"".join(body)}</sec></body>
<back><ref-list><title>References</title>{refs}</ref-list></back>
</article>
"""
    (folder / "article.nxml").write_text(xml, encoding="utf-8")
    return {"graphics": hrefs}
