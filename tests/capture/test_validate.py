"""validate_document: JSON Schema decides, every error points at its field, drafts relax only
``required``, and a form accepts only the fields it declares."""
import json
from pathlib import Path

import pytest

from ecrf.capture.validate import validate_document
from ecrf.definitions.model import thaw

KITCHEN_SINK = json.loads((Path(__file__).parents[1] / "formgen" / "kitchen_sink.json").read_text("utf-8"))
BASE = {"visdat": "2024-03-15", "smoker": "N"}


def _pointers(errors):
    return [p for p, _ in errors]


@pytest.fixture
def ks_form(form_def):
    return form_def(KITCHEN_SINK, "ks")


def test_a_missing_required_field_points_at_the_field(ks_form):
    assert validate_document(ks_form, {"smoker": "N"}, complete=True) == [("/visdat", "this field is required")]
    assert validate_document(ks_form, {"smoker": "N"}, complete=False) == []


def test_a_field_required_by_if_then_points_at_that_field(ks_form):
    errors = validate_document(ks_form, dict(BASE, smoker="Y"), complete=True)
    assert errors == [("/packs", "this field is required")]
    assert validate_document(ks_form, dict(BASE, smoker="Y"), complete=False) == []


def test_dependent_required(ks_form):
    errors = validate_document(ks_form, dict(BASE, endat="2024-04-01"), complete=True)
    assert errors == [("/outcome", "this field is required when 'endat' is given")]


def test_errors_in_a_repeating_group_point_at_row_and_field(ks_form):
    doc = dict(BASE, tubes=[{"tube": "EDTA", "volume": 11}, {"volume": 2}, {"tube": "blood"}])
    errors = validate_document(ks_form, doc, complete=True)
    assert errors == [("/tubes/0/volume", "must be at most 10"), ("/tubes/1/tube", "this field is required"),
                      ("/tubes/2/tube", "is not one of the allowed choices")]
    # a draft may leave a row's required field empty, but every other rule holds
    assert _pointers(validate_document(ks_form, doc, complete=False)) == ["/tubes/0/volume", "/tubes/2/tube"]


def test_drafts_relax_only_required(ks_form):
    doc = {"weight": 300, "visdat": "2024-02-30", "code": "x1", "route": "nasal", "packs": "three",
           "aware": "2024-03-15T10:00", "dose_time": "10:00", "tubes": [{"tube": "EDTA"}] * 5}
    for complete in (False, True):
        errors = dict(validate_document(ks_form, doc, complete=complete))
        assert errors["/weight"] == "must be at most 250"
        assert errors["/visdat"] == "is not a valid date"
        assert errors["/code"] in ("does not have the expected form", "must have at least 4 characters")
        assert errors["/route"] == "is not one of the allowed choices"
        assert errors["/packs"] == "must be a whole number"
        assert errors["/aware"] == "is not a valid date-time"
        assert errors["/dose_time"] == "is not a valid time"
        assert errors["/tubes"] == "can have at most 4 entries"
        assert ("/smoker" in errors) is complete


def test_undeclared_fields_are_refused_by_name_even_without_additional_properties(ks_form):
    assert "additionalProperties" not in thaw(ks_form.schema)
    errors = validate_document(ks_form, dict(BASE, extra=1, tubes=[{"tube": "EDTA", "colour": "red"}]),
                               complete=False)
    assert errors == [("/extra", "'extra' is not a field of this form"),
                      ("/tubes/0/colour", "'colour' is not a field of this group")]


def test_text_that_cannot_be_stored_is_refused(ks_form):
    errors = validate_document(ks_form, dict(BASE, notes="a\x00b", code="AB\ud80012"), complete=False)
    assert ("/notes", "contains characters that are not allowed") in errors
    assert ("/code", "contains characters that are not allowed") in errors
    assert ("/weight", "must be a finite number") in validate_document(ks_form, {"weight": float("nan")}, False)


def test_not_an_object():
    assert validate_document(None, [1, 2], complete=False) == [("", "the form data must be an object")]


def test_messages_stay_short_whatever_the_value(ks_form):
    errors = validate_document(ks_form, {"symptoms": ["cough", "cough"], "notes": "x" * 5000}, False)
    assert all(len(m) < 200 for _, m in errors)
    assert ("/symptoms", "has the same entry twice") in errors


FLAG = {"flag": "not_done", "reason": "scale broken"}


def test_a_missing_flag_answers_a_required_field(form_def):
    schema = {"type": "object", "required": ["w"],
              "properties": {"w": {"type": "number", "x-ecrf": {"missing": ["not_done"]}}}}
    form = form_def(schema)
    assert validate_document(form, {}, complete=True) == [("/w", "this field is required")]
    assert validate_document(form, {}, complete=True, missing={"/w": FLAG}) == []


@pytest.mark.parametrize(("doc", "missing", "message"), [
    ({}, {"/height": FLAG}, "this field cannot be marked as missing"),
    ({}, {"/bmi": FLAG}, "this field cannot be marked as missing"),
    ({}, {"/nope": FLAG}, "missing-data flags can only be set on a field of this form"),
    ({}, {"/weight": {"flag": "not_applicable", "reason": "x"}}, "this field can only be marked not done, unknown"),
    ({}, {"/weight": {"flag": "not_done", "reason": "  "}}, "give the reason the value is missing"),
    ({}, {"/weight": {"flag": "not_done"}}, "give the reason the value is missing"),
    ({}, {"/weight": "not_done"}, 'a missing-data flag is {"flag": ..., "reason": ...}'),
    ({}, {"/weight": dict(FLAG, extra=1)}, 'a missing-data flag is {"flag": ..., "reason": ...}'),
    ({"weight": 70}, {"/weight": FLAG}, "give a value or mark the field as missing, not both"),
    ({}, {"/weight": {"flag": "unknown", "reason": "x" * 501}}, "the reason must have at most 500 characters"),
])
def test_missing_flags_are_checked(ks_form, doc, missing, message):
    pointer = next(iter(missing))
    assert (pointer, message) in validate_document(ks_form, dict(BASE, **doc), False, missing=missing)
