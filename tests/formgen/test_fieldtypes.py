"""The field-type registry: which type each schema gets, and how each field parses what a browser sends."""
import datetime as dt
import decimal

import pytest
from werkzeug.datastructures import MultiDict
from wtforms import Form

from ecrf.formgen import fieldtypes as ft


@pytest.mark.parametrize(("schema", "expected"), [
    ({"type": "string"}, ft.Text),
    ({"type": "string", "x-ecrf": {"widget": "textarea"}}, ft.TextArea),
    ({"type": "integer"}, ft.Integer),
    ({"type": "number"}, ft.Number),
    ({"type": ["number", "null"]}, ft.Number),
    ({"type": "boolean"}, ft.Radio),
    ({"type": "boolean", "x-ecrf": {"widget": "select"}}, ft.Select),
    ({"enum": ["Y", "N"]}, ft.Radio),
    ({"type": "integer", "enum": list(range(11)), "x-ecrf": {"widget": "radio"}}, ft.Radio),
    ({"enum": list("abcdefgh")}, ft.Select),
    ({"enum": ["Y", "N"], "x-ecrf": {"widget": "select"}}, ft.Select),
    ({"oneOf": [{"const": 1, "title": "One"}, {"const": 2, "title": "Two"}]}, ft.Radio),
    ({"type": "array", "items": {"enum": ["a", "b"]}}, ft.Checkboxes),
    ({"type": "array", "items": {"type": "object", "properties": {"x": {"type": "string"}}}}, ft.RepeatingGroup),
    ({"type": "string", "format": "date"}, ft.Date),
    ({"type": "string", "format": "date-time"}, ft.DateTime),
    ({"type": "string", "format": "time"}, ft.Time),
    ({"type": "string", "pattern": "^[0-9]{4}(-[0-9]{2})?$", "x-ecrf": {"widget": "partial-date"}}, ft.PartialDate),
    ({"type": "number", "readOnly": True, "x-ecrf": {"calculate": "1 + 1"}}, ft.Calculated),
    ({"type": "object", "properties": {"a": {"type": "string"}}}, ft.JSONText),
    ({"type": "array", "items": {"type": "string"}}, ft.JSONText),
    ({}, ft.JSONText),
])
def test_each_schema_gets_its_field_type(schema, expected):
    assert ft.field_type_for(schema) is expected


def test_every_type_is_documented_and_has_a_macro():
    for kind in ft.REGISTRY:
        assert kind.__doc__ and kind.macro and kind.kind
        assert ft.field_type_for  # the registry ends with the catch-all
    assert ft.REGISTRY[-1] is ft.JSONText


def test_labels_come_from_x_ecrf_then_oneof_titles_then_the_value():
    schema = {"oneOf": [{"const": 1, "title": "Mild"}, {"const": 2, "title": "Moderate"}, {"const": 3}]}
    choices = ft.choices_for(schema, {"2": "Grade 2"})
    assert [(c.key, c.label, c.value) for c in choices] == [("1", "Mild", 1), ("2", "Grade 2", 2), ("3", "3", 3)]
    yes_no = ft.choices_for({"type": "boolean"}, {"true": "Present"})
    assert [(c.label, c.value) for c in yes_no] == [("Present", True), ("No", False)]


def test_codes_that_read_alike_keep_apart():
    choices = ft.choices_for({"enum": ["1", 1, True, "true"]}, {})
    assert len({c.key for c in choices}) == 4
    assert [c.value for c in choices] == ["1", 1, True, "true"]


def _form(**fields):
    return type("F", (Form,), fields)


def _parse(field, *values, name="x"):
    form = _form(x=field)(MultiDict([(name, v) for v in values]))
    return form.x.data, form.x.process_errors


@pytest.mark.parametrize(("text", "value"), [("42", 42), (" -7 ", -7), ("+3", 3), ("", None), ("  ", None)])
def test_integers_parse(text, value):
    assert _parse(ft.IntegerInput(), text) == (value, [])


@pytest.mark.parametrize("text", ["4.5", "abc", "1e3", "12 3", "9" * 41, "1000000000000000"])
def test_integers_refuse_anything_else(text):
    data, errors = _parse(ft.IntegerInput(), text)
    assert data is None and errors


@pytest.mark.parametrize(("text", "value"), [
    ("4.5", decimal.Decimal("4.5")), ("4,5", decimal.Decimal("4.5")), ("-0.25", decimal.Decimal("-0.25")),
    (".5", decimal.Decimal("0.5")), ("1e2", decimal.Decimal("1e2")), ("", None)])
def test_numbers_parse_with_a_point_or_a_comma(text, value):
    assert _parse(ft.NumberInput(), text) == (value, [])


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-inf", "1e400", "4.5.6", "1,000.5", "five", "0x10"])
def test_numbers_refuse_nonsense_and_the_non_finite(text):
    data, errors = _parse(ft.NumberInput(), text)
    assert data is None and errors


def test_text_refuses_nul_and_control_characters_but_keeps_what_was_typed():
    form = _form(x=ft.TextInput())(MultiDict([("x", "a\x00b")]))
    assert form.x.process_errors == ["contains characters that are not allowed"]
    assert form.x._value() == "a\x00b"


def test_text_area_line_breaks_are_normalised():
    assert _parse(ft.TextInput(), "one\r\ntwo\rthree\n") == ("one\ntwo\nthree", [])


def test_dates_keep_the_text_for_json_schema_to_judge():
    assert _parse(ft.DateInput(), "2024-02-30") == ("2024-02-30", [])
    assert _parse(ft.DateInput(), "15/03/2024")[1] == ["enter the date as YYYY-MM-DD"]


def test_date_times_are_local_unless_an_offset_is_typed():
    assert _parse(ft.DateTimeInput(), "2024-03-15T14:30")[0] == dt.datetime(2024, 3, 15, 14, 30)
    aware, _ = _parse(ft.DateTimeInput(), "2024-03-15T14:30:00Z")
    assert aware.utcoffset() == dt.timedelta(0)
    assert _parse(ft.DateTimeInput(), "2024-02-30T10:00")[1] == ["this date or time does not exist"]
    assert _parse(ft.DateTimeInput(), "tomorrow")[1]


def test_times():
    assert _parse(ft.TimeInput(), "07:05")[0] == dt.time(7, 5)
    assert _parse(ft.TimeInput(), "07:05:09+02:00")[0].utcoffset() == dt.timedelta(hours=2)
    assert _parse(ft.TimeInput(), "25:00")[1] == ["this time does not exist"]
    assert _parse(ft.TimeInput(), "7pm")[1] == ["enter the time as HH:MM"]


def _partial(year, month="", day=""):
    form = _form(d=ft.PartialDateInput())(MultiDict({"d-year": year, "d-month": month, "d-day": day}))
    return form.d.data, form.d.process_errors


@pytest.mark.parametrize(("parts", "value"), [
    (("2024",), "2024"), (("2024", "03"), "2024-03"), (("2024", "3", "5"), "2024-03-05"),
    (("", "", ""), None)])
def test_partial_dates(parts, value):
    assert _partial(*parts) == (value, [])


@pytest.mark.parametrize(("parts", "message"), [
    (("24",), "enter the year with 4 digits"), (("2024", "", "05"), "give the month when the day is known"),
    (("2024", "13"), "the month must be 1 to 12"), (("2023", "02", "29"), "this date does not exist"),
    (("", "03"), "enter the year with 4 digits")])
def test_partial_dates_refuse_what_cannot_be(parts, message):
    assert _partial(*parts) == (None, [message])


def test_a_partial_date_shows_its_parts():
    field = _form(d=ft.PartialDateInput())(data={"d": "2024-03"}).d
    assert (field.part("year"), field.part("month"), field.part("day")) == ("2024", "03", "")


def test_choices_map_keys_to_codes_and_refuse_strangers():
    choices = ft.choices_for({"enum": [1, 2, 3]}, {})
    assert _parse(ft.ChoiceInput(choices=choices), "2") == (2, [])
    assert _parse(ft.ChoiceInput(choices=choices), "") == (None, [])
    assert _parse(ft.ChoiceInput(choices=choices), "4") == (None, ["is not one of the allowed choices"])
    assert _parse(ft.ChoiceInput(choices=choices), "1", "2")[1] == ["choose one answer"]


def test_checkboxes_keep_the_code_list_order():
    choices = ft.choices_for({"enum": ["cough", "fever", "pain"]}, {})
    assert _parse(ft.MultiChoiceInput(choices=choices), "pain", "cough") == (["cough", "pain"], [])
    assert _parse(ft.MultiChoiceInput(choices=choices)) == (None, [])
    assert _parse(ft.MultiChoiceInput(choices=choices), "cough", "plague")[1] == [
        "is not one of the allowed choices"]


def test_json_fallback():
    assert _parse(ft.JSONInput(), '{"a": [1, 2]}') == ({"a": [1, 2]}, [])
    assert _parse(ft.JSONInput(), "NaN")[1] == ["enter a valid JSON value"]
    assert _parse(ft.JSONInput(), "{")[1] == ["enter a valid JSON value"]


def test_numbers_are_shown_without_noise():
    assert ft.format_number(5.0) == "5"
    assert ft.format_number(0.1) == "0.1"
    assert ft.format_number(decimal.Decimal("4.50")) == "4.50"
    assert ft.format_number(12) == "12"
