"""The ODM round trip: every reference study under forms/ is published, exported as ODM 1.3.2 by the
export service, imported back with ``ecrf import odm`` as a new study, validated, and compared with
the original: visit ids, labels, days, windows and descriptions, the forms of each visit, log forms and unscheduled forms, and
each form's fields (names, titles, types and formats, units, code lists with their codes and labels,
ranges, missing-data flag options), repeating groups with their columns.

Not compared, because ODM metadata has no place for them (docs/imports.md lists them too): the
arms a visit belongs to, conditions (``show_if``), calculations and soft checks (expressions), ``required``
(the export marks every item optional), sections inside a form (ItemGroups are the form and its
repeating groups), widgets other than checkboxes, descriptions, string lengths and patterns other than the partial
date, the place of a repeating group among the form's fields (it comes after them), and the JSON
type of a multiple-choice field's codes (they come back as text).
"""
import json

import pytest

from ecrf.definitions import load_study
from ecrf.definitions.model import code_values, thaw
from ecrf.exchange.export_service import operator_scope, run_export
from ecrf.formgen.build import resolve
from tests.conftest import FORMS

STUDIES = sorted(p.name for p in FORMS.iterdir() if (p / "study.json").is_file())


def test_every_reference_study_is_walked_and_they_hold_what_is_compared():
    assert len(STUDIES) >= 4 and "mesrix-ii" in STUDIES
    fields = [f for name in STUDIES for form in summary(load_study(FORMS / name))["forms"].values()
              for f in form["fields"].values()]
    assert any(f.get("multiple") and f["codes"] for f in fields)  # a multiple-choice field
    assert any(f.get("missing") for f in fields) and any(f.get("unit") for f in fields)
    assert any(f.get("codes") and not f["multiple"] for f in fields) and any("table" in f for f in fields)
    assert any(any(b is not None for b in f.get("range", ())) for f in fields)


def _kind(schema):
    kind = schema.get("type")
    if schema.get("format") in ("date", "date-time", "time"):
        return schema["format"]
    if (schema.get("x-ecrf") or {}).get("widget") == "partial-date" or "[0-9]{4}" in schema.get("pattern", ""):
        return "partial-date"
    return kind


def _codes(schema):
    codes = code_values(schema)
    if codes is None:
        return None
    target = schema.get("items", schema) if schema.get("type") == "array" else schema
    labels = (target.get("x-ecrf") or {}).get("labels") or (schema.get("x-ecrf") or {}).get("labels") or {}
    if not labels and "oneOf" in target:
        labels = {(o["const"] if isinstance(o["const"], str) else json.dumps(o["const"])): o.get("title")
                  for o in target["oneOf"]}
    return [(code, labels.get(code) or code) for code in codes]


def _field(schema, root):
    schema = resolve(thaw(schema), root)
    items = resolve(schema.get("items") or {}, root) if schema.get("type") == "array" else {}
    if items.get("type") == "object" and code_values(schema) is None:
        return {"title": schema.get("title"), "table": {
            name: _field(item, root) for name, item in (items.get("properties") or {}).items()}}
    return {"title": schema.get("title"), "kind": _kind(schema),
            "multiple": schema.get("type") == "array", "codes": _codes(schema),
            "unit": (schema.get("x-ecrf") or {}).get("unit"),
            "missing": list((schema.get("x-ecrf") or {}).get("missing") or ()),
            "range": [schema.get(k) for k in ("minimum", "exclusiveMinimum", "maximum", "exclusiveMaximum")]}


def summary(study):
    """What must survive the round trip, as plain data."""
    return {
        "visits": [(v.id, v.label, v.day, v.window_before, v.window_after, list(v.forms),
                    next(d.get("description") for d in study.document["visits"] if d["id"] == v.id))
                   for v in study.visits],
        "log_forms": list(study.log_forms),
        "unscheduled_forms": list(study.document.get("unscheduled_forms") or ()),
        "forms": {form_id: {"title": form.title,
                            "fields": {f.name: _field(f.schema, thaw(form.schema)) for f in form.fields}}
                  for form_id, form in study.forms.items()},
    }


def _order(fields):
    """Field names in order, repeating groups last (ODM has them as item groups after the form's)."""
    return [n for n, f in fields.items() if "table" not in f] + [n for n, f in fields.items() if "table" in f]


@pytest.mark.parametrize("name", STUDIES)
def test_odm_export_imports_back_as_the_same_study(name, db, actor, cli, load_study, tmp_path):
    original = load_study(name)
    xml = tmp_path / "odm.xml"
    run_export(db, actor, operator_scope(db, original.id), "odm", xml)

    target = tmp_path / "forms" / f"{name}-copy"
    target.parent.mkdir()
    result = cli("import", "odm", str(xml), "--study-id", f"{name}-copy", "-o", str(target))
    assert result.exit_code == 0, result.output
    assert cli("study", "validate", str(target)).exit_code == 0
    copy = load_study(target)

    want, got = summary(original), summary(copy)
    assert got["visits"] == want["visits"]
    assert got["log_forms"] == want["log_forms"]
    assert got["unscheduled_forms"] == want["unscheduled_forms"]
    assert list(got["forms"]) == list(want["forms"])
    for form_id, form in want["forms"].items():
        assert got["forms"][form_id]["title"] == form["title"]
        assert _order(got["forms"][form_id]["fields"]) == _order(form["fields"]), form_id
        for field, expected in form["fields"].items():
            assert (form_id, field, got["forms"][form_id]["fields"][field]) == (form_id, field, expected)


def test_the_export_study_with_integer_codes_checkboxes_and_flags_round_trips(xs, export, cli, tmp_path):
    from tests.exchange.conftest import write_study

    _, xml = export("odm")
    target = tmp_path / "copy" / "xscopy"
    target.parent.mkdir()
    assert cli("import", "odm", str(xml), "--study-id", "xscopy", "-o", str(target)).exit_code == 0
    want, got = summary(load_study(write_study(tmp_path / "again"))), summary(load_study(target))
    assert got["visits"] == want["visits"] and got["log_forms"] == want["log_forms"] == ["ae"]
    for form in want["forms"]:
        assert got["forms"][form] == want["forms"][form]
    dm = got["forms"]["dm"]["fields"]
    assert dm["symptoms"]["codes"] == [("cough", "Cough"), ("fever", "Fever")]
    assert dm["weight"]["missing"] == ["not_done", "unknown"] and dm["weight"]["unit"] == "kg"
    assert dm["grade"]["kind"] == "integer" and dm["grade"]["codes"][0] == ("1", "Mild")
