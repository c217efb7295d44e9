"""Building a form version: field order, sections, $ref, names, the browser rules and the cache."""
import pytest
from werkzeug.datastructures import MultiDict

from ecrf.definitions import load_study
from ecrf.formgen import build, build_form_class, layout_for
from ecrf.formgen.convert import to_document
from ecrf.paths import resource

FORMS = resource("forms")
STUDIES = sorted(p.name for p in FORMS.iterdir() if (p / "study.json").is_file())


def test_fields_follow_property_order_and_sections_follow_x_ecrf(kitchen_sink):
    layout = layout_for(kitchen_sink)
    assert [f.name for f in layout.fields][:3] == ["smoker", "packs", "visdat"]  # property order
    sections = [(s.id, [f.name for f in s.fields]) for s in layout.sections]
    assert sections[1] == ("main", ["visdat", "smoker", "packs"])  # x-ecrf.order within the section
    assert sections[2] == ("more", ["tubes", "total"])
    assert sections[0][0] is None and sections[0][1][0] == "weight"  # fields without a section
    assert layout.sections[2].description == "Samples and totals."


def test_ref_is_resolved_and_its_hints_merged(kitchen_sink):
    smoker = layout_for(kitchen_sink).field("smoker")
    assert smoker.type.name == "radio"
    assert [(c.key, c.label) for c in smoker.choices] == [("Y", "Yes"), ("N", "No")]
    assert smoker.section == "main" and smoker.required


def test_field_details(kitchen_sink):
    layout = layout_for(kitchen_sink)
    weight = layout.field("weight")
    assert (weight.unit, weight.decimals, weight.missing_flags) == ("kg", 1, ("not_done", "unknown"))
    assert layout.field("bmi").read_only and layout.field("bmi").calculate is not None
    assert layout.field("site_code").read_only and layout.field("site_code").default == "S1"
    tubes = layout.field("tubes")
    assert [c.name for c in tubes.columns] == ["tube", "volume"]
    assert tubes.column("tube").required and not tubes.column("volume").required
    assert tubes.max_items == 4


def test_the_class_is_cached_per_version_hash(kitchen_sink, form_def):
    first = build_form_class(kitchen_sink)
    assert build_form_class(kitchen_sink) is first
    other = form_def({"type": "object", "properties": {"a": {"type": "string"}}}, "ks")
    assert build_form_class(other) is not first
    build.clear_cache()
    assert build_form_class(kitchen_sink) is not first


@pytest.mark.parametrize("name", ["data", "errors", "validate", "process", "meta", "populate_obj",
                                  "validate_sbp", "filter_sbp", "csrf_token"])
def test_names_that_wtforms_uses_are_still_fields(form_def, name):
    schema = {"type": "object", "properties": {name: {"type": "string"}, "sbp": {"type": "integer"}}}
    layout = layout_for(form_def(schema))
    spec = layout.field(name)
    assert spec.attr == f"x-{name}"
    form = layout.form_class(MultiDict({f"x-{name}": "hello", "sbp": "120"}))
    assert to_document(layout, form).document == {name: "hello", "sbp": 120}


def test_browser_rules_carry_conditions_and_calculation_trees(kitchen_sink):
    rules = {r["name"]: r for r in layout_for(kitchen_sink).browser_rules()["fields"]}
    assert rules["packs"]["show_if"] == {"properties": {"smoker": {"const": "Y"}}, "required": ["smoker"]}
    assert rules["bmi"]["calc"][0] == "call" and rules["bmi"]["decimals"] == 1
    assert rules["grade"]["choices"][0] == ["1", 1, "1 Mild"]
    assert [c["name"] for c in rules["tubes"]["columns"]] == ["tube", "volume"]


def test_a_condition_the_browser_cannot_evaluate_is_left_to_the_server(form_def):
    schema = {"type": "object", "$defs": {"y": {"const": "Y"}},
              "properties": {"a": {"type": "string"},
                             "b": {"type": "string", "x-ecrf": {"show_if": {"properties": {"a": {"$ref": "#/$defs/y"}}}}}}}
    rules = {r["name"]: r for r in layout_for(form_def(schema)).browser_rules()["fields"]}
    assert "show_if" in rules["b"] and rules["b"]["show_if"] is None


@pytest.mark.parametrize("study", STUDIES)
def test_every_reference_form_builds(study):
    spec = load_study(FORMS / study)
    for form_def in spec.forms.values():
        layout = layout_for(form_def)
        assert [f.name for f in layout.fields] == list(form_def.schema["properties"])
        shown = [f.name for s in layout.sections for f in s.fields]
        assert sorted(shown) == sorted(f.name for f in layout.fields)
        assert layout.form_class(MultiDict()) is not None
