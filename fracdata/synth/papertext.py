"""The words of a synthetic paper (papers.py): front matter, licence statements, captions, body
paragraphs citing the figures, and a bibliography full of DOIs. Deterministic by the caller's
numpy Generator; the fractography phrases come from text.py."""

from __future__ import annotations

from xml.sax.saxutils import escape

from fracdata.synth import text

SURNAMES = ("Tanaka", "Murakami", "Schmidt", "Rossi", "Kowalski", "Nguyen", "Okafor", "Silva", "Larsen", "Haddad",
            "Ivanova", "Chen", "Moreau", "Fischer", "Ahmed", "Kim", "Novak", "Garcia", "Petrov", "Yilmaz")
# (journal, its DOI pattern): the article's own DOI and every reference's look alike
JOURNALS = (
    ("Engineering Failure Analysis", "10.1016/j.engfailanal.{y}.{n:06d}"),
    ("International Journal of Fatigue", "10.1016/j.ijfatigue.{y}.{n:06d}"),
    ("Materials Science and Engineering: A", "10.1016/j.msea.{y}.{n:06d}"),
    ("Metals", "10.3390/met{n:08d}"),
    ("IEEE Access", "10.1109/ACCESS.{y}.{n:07d}"),
    ("Fatigue & Fracture of Engineering Materials & Structures", "10.1111/ffe.{n:05d}"),
    ("Journal of Materials Science", "10.1007/s10853-0{yy:02d}-{n:05d}-{d}"),
    ("Acta Materialia", "10.1016/j.actamat.{y}.{n:06d}"),
)
PLACEHOLDER_REF = "10.1109/access.2024.000000"  # a real paper's reference [3] printed this
WORDS = ("fatigue", "crack", "growth", "behaviour", "of", "additively", "manufactured", "steel", "alloy", "under",
         "variable", "amplitude", "loading", "microstructure", "effects", "on", "the", "fracture", "toughness",
         "high-cycle", "defects", "porosity", "and", "life", "prediction", "welded", "joints", "hydrogen")
# placement -> (statement, true licence); {y} = year, {a} = first author's surname
LICENCES = {
    "footer": ("\u00a9 {y} The Authors. Published by Elsevier Ltd. This is an open access article under the CC BY "
               "license (http://creativecommons.org/licenses/by/4.0/).", "CC BY 4.0"),
    "abstract": ("This article is distributed under the terms of the Creative Commons Attribution 4.0 International "
                 "License, which permits unrestricted use, provided the original work is properly cited.", "CC BY 4.0"),
    "xmp": ("\u00a9 The Author(s) {y}", "CC BY 4.0"),
    "closing": ("Open Access This article is licensed under a Creative Commons Attribution 4.0 International License, "
                "which permits use, sharing, adaptation, distribution and reproduction in any medium or format.",
                "CC BY 4.0"),
    "nc": ("This is an open access article under the CC BY-NC-ND license "
           "(http://creativecommons.org/licenses/by-nc-nd/4.0/).", "CC BY-NC-ND 4.0"),
    "none": ("\u00a9 {y} Elsevier Ltd. All rights reserved.", None),
    "license_href": ("This is an open access article under the CC BY license.", "CC BY 4.0"),
    "license_p": ("This is an open-access article distributed under the terms of the Creative Commons Attribution "
                  "License, which permits unrestricted use, distribution, and reproduction in any medium, provided "
                  "the original author and source are credited.", "CC BY"),
    "ali": ("", "CC BY 4.0"),
    "copyright": ("\u00a9 {y} {a} et al. This is an open access article distributed under the Creative Commons "
                  "Attribution License, which permits unrestricted use, distribution, and reproduction in any "
                  "medium, provided the original work is properly cited.", "CC BY"),
    "copyright_outside": ("{a} et al. This is an open-access article distributed under the terms of the Creative "
                          "Commons Attribution License, which permits unrestricted use, distribution, and "
                          "reproduction in any medium, provided the original author and source are credited.", "CC BY"),
    "license_outside": ("This article is published under an open access licence.", "CC BY 3.0"),
}
LICENCE_URL = "https://creativecommons.org/licenses/by/4.0/"
OWN_DOI_AT = ("footer", "header", "metadata", "subject", "xmp", "link", "crossmark", "article_id")


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def _doi(pattern: str, year: int, n: int, rng) -> str:
    return pattern.format(y=year, yy=year % 100, n=n, d=int(rng.integers(0, 10)))


def front_matter(rng, i: int, fmt: str, doi_at: str, licence_at: str) -> dict:
    journal, pattern = _pick(rng, JOURNALS)
    year = int(rng.integers(2007, 2026))
    authors = [f"{_pick(rng, 'ABCDEHJKLMNPRSTY')}. {_pick(rng, SURNAMES)}" for _ in range(int(rng.integers(2, 6)))]
    material = text.material(rng)
    feats = (_pick(rng, tuple(text.TOPIC)[:6]),)
    statement, licence = LICENCES["nc" if licence_at == "nc" else licence_at]
    if fmt == "jats" and licence_at in ("nc", "none"):
        statement = {"nc": "This is an open access article under the CC BY-NC-ND license.",
                     "none": statement}[licence_at]
    doi = _doi(pattern, year, 100000 + 37 * i + int(rng.integers(0, 37)), rng)
    return {
        "name": f"paper{i:04d}", "format": fmt, "doi": doi, "doi_at": doi_at, "licence_at": licence_at,
        "true_doi": doi.lower() if doi_at in OWN_DOI_AT else None, "licence": licence,
        "licence_text": statement.format(y=year, a=authors[0].split(". ", 1)[1]), "licence_url": LICENCE_URL,
        "title": text.title(rng, feats, material), "authors": authors, "journal": journal, "year": year,
        "journal_line": f"{journal} {int(rng.integers(10, 300))} ({year}) {int(rng.integers(100000, 999999))}",
        "received": f"{int(rng.integers(1, 28))} March {year}", "accepted": f"{int(rng.integers(1, 28))} June {year}",
        "abstract": (f"The {_pick(rng, text.TESTS)} behaviour of {material} was studied. Fracture surfaces were "
                     "examined by scanning electron microscopy to identify the crack origins and the failure "
                     "mechanisms, and the results are discussed against the literature."),
        "material": material, "pmc": 9000000 + i, "placeholder_ref": False,
        "introduction": (f"{material} is used in components whose failures are investigated by fractography "
                         "[1, 2]. The fracture surface records where a crack started, how it grew and how the part "
                         "finally broke [3]. Earlier studies related the surface features to the loading and to "
                         "the defects left by manufacturing, but rarely for this alloy under these conditions. "
                         "This work reports the fracture surfaces of specimens tested in the laboratory and of "
                         "a part that failed in service."),
    }


def figure_caption(rng, material: str, feats: list, marks: bool, titles: bool) -> str:
    test = _pick(rng, text.TESTS)
    if len(feats) == 1:
        return f"SEM fractograph of the {material} fracture surface showing {text.describe(rng, feats[0])}."
    if marks:
        what = "; ".join(f"({'abcdefgh'[k]}) {text.describe(rng, f)}" for k, f in enumerate(feats))
        return f"SEM fractographs of {material} after {test} testing: {what}."
    if titles:
        return (f"Fracture surfaces of {material} in the conditions named above each panel, showing "
                f"{text.describe(rng, feats[0])} and {text.describe(rng, feats[-1])}.")
    return f"SEM fractographs of the {material} fracture surfaces after {test} testing, showing {text.describe(rng, feats[0])}."


def plot_caption(rng, material: str) -> str:
    return f"Stress-strain curves of the {material} specimens at {_pick(rng, ('room temperature', '300 C', '-40 C'))}."


def paragraphs(rng, figures: list[dict], fmt: str, short: bool) -> list[str]:
    """One paragraph per figure, citing it (plain text for PDF, <xref> for JATS), then a closing one."""
    def cite(k: int) -> str:
        label = f"Fig. {k}"
        return f'<xref ref-type="fig" rid="F{k}">{label}</xref>' if fmt == "jats" else label

    def esc(s: str) -> str:
        return escape(s) if fmt == "jats" else s

    out = []
    for k, fig in enumerate(figures, 1):
        if fig["fracture"]:
            lead = esc("Specimens were sectioned after testing and the fracture surfaces examined. The surface in ")
            rest = esc(f" {_pick(rng, text.VERBS)} {text.describe(rng, (_pick(rng, tuple(text.PHRASES)[:6]),))}.")
        else:
            lead, rest = esc("The tensile properties of the heats are compared in "), esc(" and agree with the data sheet.")
        out.append(lead + cite(k) + rest)
    if not short:
        out.append(esc("The results show that the failures started at surface defects and that the crack grew "
                       "by fatigue before the final overload."))
    return out


def references(rng, n: int, trap: bool) -> list[dict]:
    """n references, most with a DOI; the placeholder DOI among the first three in 60% of papers;
    `trap`: a reference that names a licence (a PDF whose own licence is prose or missing)."""
    refs = []
    for _ in range(n):
        journal, pattern = _pick(rng, JOURNALS)
        year = int(rng.integers(1995, 2026))
        doi = None if rng.random() < 0.15 else _doi(pattern, year, int(rng.integers(1000, 999999)), rng)
        refs.append({"surname": _pick(rng, SURNAMES), "initials": f"{_pick(rng, 'ABCDEHJKLMNPRSTY')}.",
                     "title": " ".join(_pick(rng, WORDS) for _ in range(int(rng.integers(5, 11)))).capitalize(),
                     "journal": journal, "year": year, "vol": int(rng.integers(1, 300)),
                     "pages": int(rng.integers(100, 99999)), "doi": doi})
    if rng.random() < 0.6:
        refs[int(rng.integers(0, min(3, n)))].update(journal="IEEE Access", year=2024, doi=PLACEHOLDER_REF)
    if trap:
        refs.append({"surname": "Creative Commons", "initials": "", "title": "Attribution-NonCommercial 4.0 International",
                     "journal": "https://creativecommons.org/licenses/by-nc/4.0/", "year": 2013, "vol": "", "pages": "",
                     "doi": None})
    return refs


def reference_text(r: dict) -> str:
    who = f"{r['initials']} {r['surname']}".strip()
    where = f"{r['journal']} {r['vol']} ({r['year']}) {r['pages']}".replace("  ", " ").replace(" ()", "")
    doi = f" https://doi.org/{r['doi']}" if r["doi"] and r["surname"] != "Creative Commons" else ""
    return f"{who}, {r['title']}, {where}.{doi}"
