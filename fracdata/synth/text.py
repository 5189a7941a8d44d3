"""Fake-but-plausible paper text for `fracdata synth`: titles, figure captions, citing excerpts.

The labeller stage reads captions and excerpts as context, so they mention each panel's
features the way papers do (display names and synonyms from the taxonomy, with a mechanism).
All choices come from the caller's numpy Generator, so text is deterministic by seed.
"""

from __future__ import annotations

MATERIALS = (
    "AISI 4340 steel", "Ti-6Al-4V", "AA7075-T6 aluminium alloy", "Inconel 718", "316L stainless steel",
    "AlSi10Mg made by laser powder bed fusion", "A356 cast aluminium", "S355 structural steel",
    "CuZn37 brass", "AZ31 magnesium alloy", "42CrMo4 bearing steel", "Ti-6Al-4V made by electron beam melting",
)
TESTS = ("uniaxial tensile", "high-cycle fatigue", "very-high-cycle fatigue", "Charpy impact",
         "slow strain rate", "four-point bending fatigue", "fracture toughness")
TOPIC = {
    "dimple_equiaxed": "Ductile fracture", "cleavage_facet": "Cleavage fracture",
    "ig_facet": "Intergranular embrittlement", "striation_ductile": "Fatigue crack growth",
    "gas_pore": "Porosity and fatigue life", "secondary_crack": "Crack branching",
    "fish_eye": "Subsurface crack initiation in very-high-cycle fatigue",
}
PHRASES = {
    "dimple_equiaxed": ("equiaxed dimples", "ductile dimples", "dimples typical of microvoid coalescence",
                        "equiaxed dimples, some containing second-phase particles"),
    "cleavage_facet": ("cleavage facets with river patterns", "flat cleavage facets",
                       "transgranular cleavage with river lines", "brittle cleavage facets"),
    "ig_facet": ("intergranular facets", "rock-candy intergranular fracture", "smooth grain-boundary facets",
                 "intergranular fracture along prior grain boundaries"),
    "striation_ductile": ("fatigue striations", "fine ductile striations", "regularly spaced fatigue striations",
                          "striations perpendicular to the crack growth direction"),
    "gas_pore": ("gas pores", "spherical gas porosity", "smooth-walled pores", "round pores from entrapped gas"),
    "secondary_crack": ("secondary cracks", "secondary cracking", "microcracks branching from the main crack",
                        "narrow secondary cracks"),
    "fish_eye": ("a fish-eye around a subsurface inclusion", "a fish-eye initiation site",
                 "a fisheye with a fine granular area around the origin", "a circular fish-eye zone"),
}
MECHANISM = {
    "dimple_equiaxed": "indicating ductile overload failure",
    "cleavage_facet": "indicating brittle transgranular fracture",
    "ig_facet": "indicating decohesion along the grain boundaries",
    "striation_ductile": "confirming stable fatigue crack propagation",
    "gas_pore": "which acted as stress concentrators",
    "secondary_crack": "showing that the crack branched below the surface",
    "fish_eye": "typical of internal crack initiation at long lives",
}
VERBS = ("shows", "reveals", "displays", "is dominated by", "exhibits")


def _pick(rng, options):
    return options[int(rng.integers(len(options)))]


def describe(rng, features) -> str:
    """'equiaxed dimples with gas pores' (first = main texture, second = what sits on it)."""
    parts = [_pick(rng, PHRASES[f]) for f in features]
    return " with ".join(parts)


def material(rng) -> str:
    return _pick(rng, MATERIALS)


def title(rng, features, material: str) -> str:
    frame = _pick(rng, ("{t} in {m}", "{t} of {m}: a fractographic study", "On {t_l} in {m}",
                        "{t} in {m} under {x} loading"))
    return frame.format(t=TOPIC[features[0]], t_l=TOPIC[features[0]].lower(), m=material,
                        x=_pick(rng, TESTS))


def caption(rng, number: int, panels: list[tuple[str, tuple[str, ...]]], material: str) -> str:
    """One figure caption naming what each panel shows: 'Fig. 2. SEM fractographs ...: (a) ...; (b) ...'."""
    what = "; ".join(f"({letter}) {describe(rng, feats)}" for letter, feats in panels)
    return f"Fig. {number}. SEM fractographs of {material} after {_pick(rng, TESTS)} testing: {what}."


def excerpts(rng, figure: str, panel: str, features) -> list[str]:
    """One or two sentences of body text that cite the panel and name its features."""
    main = features[0]
    first = (f"As shown in {figure}{panel}, the fracture surface {_pick(rng, VERBS)} "
             f"{describe(rng, features)}, {MECHANISM[main]}.")
    out = [first]
    if rng.random() < 0.5:
        extra = features[-1]
        out.append(f"Similar {_pick(rng, PHRASES[extra]).removeprefix('a ')} were observed in the other "
                   f"specimens ({figure}{panel}), {MECHANISM[extra]}." if extra != "fish_eye" else
                   f"The origin in {figure}{panel} lies below the surface inside {_pick(rng, PHRASES[extra])}.")
    return out
