from pathlib import Path

import pytest
import yaml

from fracdata.taxonomy import Taxonomy, UnknownFeature, load_taxonomy, norm_key

TAX = load_taxonomy()


def test_taxonomy_covers_every_group_with_at_least_30_features():
    assert TAX.version == 1
    assert len(TAX.ids) == 53
    assert set(TAX.groups) == {"ductile", "cleavage", "intergranular", "fatigue", "macroscale",
                               "defects", "environment", "nonmetal"}
    per_group = {g: sum(f.group == g for f in TAX.features) for g in TAX.groups}
    assert min(per_group.values()) >= 3, per_group
    assert len(set(TAX.ids)) == len(TAX.ids)


@pytest.mark.parametrize("name, fid", [
    ("dimple_equiaxed", "dimple_equiaxed"),
    ("Equiaxed Dimples", "dimple_equiaxed"),
    ("equiaxed-dimple", "dimple_equiaxed"),
    ("  MICROVOID   coalescence ", "dimple_equiaxed"),
    ("Fatigue-Striations", "striation_ductile"),
    ("striation", "striation_ductile"),
    ("rock candy", "ig_facet"),
    ("River_Patterns", "river_pattern"),
    ("gas pores", "gas_pore"),
    ("creep cavities", "ig_cavitation"),
    ("crow's feet", "he"),
    ("Wallner line", "wallner_lines"),
    ("fish eye", "fish_eye"),
])
def test_normalise_is_case_space_hyphen_plural_insensitive_and_uses_synonyms(name, fid):
    assert TAX.normalize(name) == fid


def test_unknown_name_raises_with_the_name_and_normalize_all_reports_it():
    with pytest.raises(UnknownFeature, match="'moon craters'"):
        TAX.normalize("moon craters")
    ids, unknown = TAX.normalize_all(["Striations", "moon craters", "dimples", "fatigue striation"])
    assert ids == ["dimple_equiaxed", "striation_ductile"]  # taxonomy order, no duplicates
    assert unknown == ["moon craters"]


def test_norm_key_singularises_words_but_keeps_short_and_ss_words():
    assert norm_key("Secondary-Cracks") == "secondary crack"
    assert norm_key("gas") == "gas"
    assert norm_key("stress") == "stress"
    assert norm_key("cavities") == "cavity"


def test_a_synonym_naming_two_features_is_refused(tmp_path):
    data = yaml.safe_load(Path(load_taxonomy.__code__.co_filename).with_name("taxonomy.yaml").read_text())
    data["features"][1]["synonyms"].append("dimples")  # already a synonym of dimple_equiaxed
    with pytest.raises(ValueError, match="'dimples' names both 'dimple_equiaxed' and 'dimple_shear'"):
        Taxonomy(data)


def test_unknown_taxonomy_key_is_an_error():
    with pytest.raises(ValueError, match=r"unknown keys \['colour'\]"):
        Taxonomy({"version": 1, "groups": ["g"], "features": [
            {"id": "a", "name": "a", "group": "g", "visual": "v", "colour": "red"}]})


@pytest.mark.parametrize("text, message", [
    ("version: [1\n", "not valid YAML"),
    ("- a\n- b\n", "a taxonomy file must be a YAML mapping"),
    ("version: 1\ngroups: [g]\nfeatures: [{id: a, name: a}]\n", "not a usable taxonomy (missing or malformed 'group')"),
])
def test_a_bad_taxonomy_file_is_one_line_naming_the_file(tmp_path, text, message):
    from fracdata.errors import FracdataError

    p = tmp_path / "tax.yaml"
    p.write_text(text)
    with pytest.raises(FracdataError) as e:
        load_taxonomy(p)
    assert str(e.value).startswith(f"{p}: ") and message in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(FracdataError, match="cannot read the taxonomy file"):
        load_taxonomy(tmp_path / "missing.yaml")
