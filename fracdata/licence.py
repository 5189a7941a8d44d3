"""Licence normalisation and the allow-list gate.

Papers state their licence as a URL (`https://creativecommons.org/licenses/by/4.0/`), an
attribute (`license-type="cc-by"`) or prose ("an open access article under the CC BY-NC-ND
license", "Creative Commons Attribution 4.0 International License"). All of them become one
canonical string, family plus version when stated: "CC BY 4.0", "CC BY-NC-ND", "CC0 1.0".
A URL is trusted over prose because prose often names *other* licences ("unlike CC BY-NC ...").
"""

from __future__ import annotations

import re

# Families whose terms allow redistributing derived images in a dataset (attribution kept in
# the manifest's provenance). NC/ND families are refused: a training set is a derivative and
# may be used commercially.
ALLOWED_FAMILIES = frozenset({"CC BY", "CC BY-SA", "CC0", "PDM"})

# URL path element -> family; creativecommons.org/licenses/<code>/<version>/ and
# creativecommons.org/publicdomain/{zero,mark}/<version>/
_URL_CODES = {
    "by": "CC BY", "by-sa": "CC BY-SA", "by-nc": "CC BY-NC", "by-nd": "CC BY-ND",
    "by-nc-sa": "CC BY-NC-SA", "by-nc-nd": "CC BY-NC-ND", "zero": "CC0", "mark": "PDM",
}
_URL_RE = re.compile(r"creativecommons\.org/(?:licenses|licences|publicdomain)/([a-z-]+)(?:/(\d(?:\.\d)?))?", re.IGNORECASE)
# "CC BY", "CC-BY-NC-ND 4.0", "cc by-sa", "CC BY 4.0"
_SHORT_RE = re.compile(r"\bCC[\s-]?BY((?:[\s-](?:NC|SA|ND)\b)*)(?:[\s-]?(\d\.\d)\b)?", re.IGNORECASE)
_CC0_RE = re.compile(r"\bCC[\s-]?0\b|\bCC[\s-]?zero\b|public\s+domain\s+dedication", re.IGNORECASE)
# Older PLOS articles: "distributed under the terms of the Creative Commons Public Domain
# Declaration, which stipulates that, once placed in the public domain, this work may be freely
# reproduced ..." (PLOS Med 2005, e402); the Public Domain Mark says the same in a URL.
_PD_RE = re.compile(r"public\s+domain\s+(?:declaration|mark)|placed\s+in\s+the\s+public\s+domain", re.IGNORECASE)
# "Creative Commons Attribution-NonCommercial-NoDerivatives 4.0 International License"
_LONG_RE = re.compile(
    r"creative\s+commons\s+attribution((?:[\s-]+(?:non-?commercial|share-?alike|no-?derivs|no-?derivatives|no-?derivative))*)"
    r"(?:[\s-]+(?:license|licence|international|generic|unported))*[\s-]*(\d\.\d)?", re.IGNORECASE)
_LONG_PARTS = ((r"non-?commercial", "NC"), (r"share-?alike", "SA"), (r"no-?deriv", "ND"))


def _family(parts: list[str], version: str | None) -> str:
    # CC orders the elements BY-NC-SA / BY-NC-ND, whatever order the prose used.
    order = [p for p in ("NC", "SA", "ND") if p in parts]
    name = "CC BY" + "".join(f"-{p}" for p in order)
    return f"{name} {version}" if version else name


def normalise_licence(*texts: str | None) -> str | None:
    """Canonical licence from the first text that names one (URLs first), or None.

    >>> normalise_licence("https://creativecommons.org/licenses/by-nc-nd/4.0/")
    'CC BY-NC-ND 4.0'
    """
    texts = [t for t in texts if t]
    for t in texts:
        m = _URL_RE.search(t)
        if m and m.group(1).lower() in _URL_CODES:
            fam, ver = _URL_CODES[m.group(1).lower()], m.group(2)
            if ver and "." not in ver:
                ver += ".0"
            return f"{fam} {ver}" if ver else fam
    for t in texts:
        m = _SHORT_RE.search(t)
        if m:
            parts = re.findall(r"NC|SA|ND", m.group(1).upper())
            return _family(parts, m.group(2))
        if _CC0_RE.search(t):
            return "CC0 1.0"
        if _PD_RE.search(t):
            return "PDM"
        m = _LONG_RE.search(t)
        if m:
            words = m.group(1).lower()
            parts = [code for pat, code in _LONG_PARTS if re.search(pat, words)]
            return _family(parts, m.group(2))
    return None


def family(licence: str | None) -> str | None:
    """'CC BY-SA 4.0' -> 'CC BY-SA' (the version never matters to the gate)."""
    if licence is None:
        return None
    return re.sub(r"\s+\d(?:\.\d)?$", "", licence)


def allowed(licence: str | None) -> bool:
    return family(licence) in ALLOWED_FAMILIES
