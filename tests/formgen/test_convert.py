"""form.data ⇄ JSON document: exact round trips for every field of every reference form, and the
conversions that need care (local date-times, times, empty rows, read-only and calculated fields)."""
import datetime as dt
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from werkzeug.datastructures import MultiDict

from ecrf.definitions import load_study
from ecrf.formgen import Context, layout_for, to_document, to_formdata
from ecrf.paths import resource

FORMS = resource("forms")
CPH = Context.for_zone("Europe/Copenhagen", now=dt.datetime(2024, 1, 10, 12, tzinfo=dt.timezone.utc))
STUDIES = {p.name: load_study(p) for p in sorted(FORMS.iterdir()) if (p / "study.json").is_file()}
REFERENCE = [(study, form_id) for study, spec in STUDIES.items() for form_id in sorted(spec.forms)]
_CLEAN = st.characters(blacklist_categories=("Cs", "Cc"))


def _text(spec):
    schema = spec.schema
    if "pattern" in schema:
        return st.from_regex(schema["pattern"], fullmatch=True).filter(
            lambda s: s == s.strip() and s and not re.search(r"[\x00-\x1f\x7f]", s))
    low, high = schema.get("minLength", 1), min(schema.get("maxLength", 40), 40)
    alphabet = _CLEAN if spec.kind == "string" else st.one_of(_CLEAN, st.just("\n"))
    return st.text(alphabet, min_size=max(low, 1), max_size=max(high, 1)).map(str.strip).filter(
        lambda s: low <= len(s) <= schema.get("maxLength", 10**6) and s)


def _number(spec, integer):
    schema = spec.schema
    low = schema.get("minimum", schema.get("exclusiveMinimum", -10**6))
    high = schema.get("maximum", schema.get("exclusiveMaximum", 10**6))
    if integer:
        return st.integers(int(low), int(high))
    return st.floats(low, high, allow_nan=False, allow_infinity=False)


def value_for(spec):
    """A valid JSON value for one field (calculated, read-only and JSON fields are left out)."""
    kind = spec.kind
    if kind == "choice":
        return st.sampled_from([c.value for c in spec.choices])
    if kind == "choices":
        return st.sets(st.sampled_from(range(len(spec.choices))), min_size=1).map(
            lambda picked: [c.value for i, c in enumerate(spec.choices) if i in picked])
    if kind == "integer":
        return _number(spec, True)
    if kind == "number":
        return _number(spec, False)
    if kind == "date":
        return st.dates().map(dt.date.isoformat)
    if kind == "datetime":
        offsets = st.sampled_from([dt.timezone.utc, dt.timezone(dt.timedelta(hours=1)),
                                   dt.timezone(dt.timedelta(hours=-5, minutes=-30))])
        return st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1),
                            timezones=offsets).map(lambda d: d.replace(microsecond=0).isoformat())
    if kind == "time":
        return st.times().map(lambda t: t.replace(microsecond=0).isoformat() + "+01:00")
    if kind == "partial-date":
        return st.dates(min_value=dt.date(1000, 1, 1)).flatmap(
            lambda d: st.sampled_from([d.isoformat(), d.isoformat()[:7], d.isoformat()[:4]]))
    if kind == "group":
        row = st.fixed_dictionaries({}, optional={c.name: value_for(c) for c in spec.columns
                                                  if not c.read_only and c.kind != "json"})
        return st.lists(row.filter(bool), min_size=1, max_size=3)
    return _text(spec)


def document_for(layout):
    optional = {spec.name: value_for(spec) for spec in layout.fields
                if not spec.read_only and spec.kind != "json"}
    return st.fixed_dictionaries({}, optional=optional)


def _round_trip(layout, document, missing=None):
    formdata = to_formdata(layout, document, missing, CPH)
    form = layout.form_class(formdata)
    return to_document(layout, form, CPH, previous=document)


@pytest.mark.parametrize(("study", "form_id"), REFERENCE)
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_every_reference_form_round_trips(study, form_id, data):
    layout = layout_for(STUDIES[study].forms[form_id])
    document = data.draw(document_for(layout))
    flags = {f"/{s.name}": {"flag": s.missing_flags[0], "reason": "not measured"}
             for s in layout.fields if s.missing_flags and s.name not in document}
    converted = _round_trip(layout, document, flags)
    assert converted.errors == {}
    assert converted.document == document
    assert converted.missing == flags


def test_the_kitchen_sink_round_trips(kitchen_sink):
    layout = layout_for(kitchen_sink)

    @settings(max_examples=60, deadline=None)
    @given(document=document_for(layout))
    def round_trip(document):
        converted = _round_trip(layout, document)
        assert converted.errors == {}
        assert converted.document == document

    round_trip()


def _post(layout, pairs, previous=None, context=CPH):
    form = layout.form_class(MultiDict(pairs))
    return to_document(layout, form, context, previous)


def test_a_local_date_time_gets_the_site_zone_offset_of_that_day(kitchen_sink):
    layout = layout_for(kitchen_sink)
    assert _post(layout, [("aware", "2024-01-15T09:30")]).document["aware"] == "2024-01-15T09:30:00+01:00"
    assert _post(layout, [("aware", "2024-07-15T09:30")]).document["aware"] == "2024-07-15T09:30:00+02:00"


def test_a_date_time_saved_with_another_offset_is_shown_locally_and_kept(kitchen_sink):
    layout = layout_for(kitchen_sink)
    stored = {"aware": "2024-07-15T07:30:00Z"}
    posted = to_formdata(layout, stored, None, CPH)
    assert posted["aware"] == "2024-07-15T09:30"
    assert _post(layout, list(posted.items(multi=True)), previous=stored).document == stored
    changed = _post(layout, [("aware", "2024-07-15T09:45")], previous=stored).document
    assert changed["aware"] == "2024-07-15T09:45:00+02:00"


def test_a_time_takes_the_site_offset_and_keeps_a_stored_one(kitchen_sink):
    layout = layout_for(kitchen_sink)
    assert _post(layout, [("dose_time", "08:15")]).document["dose_time"] == "08:15:00+01:00"
    stored = {"dose_time": "08:15:00+02:00"}
    assert _post(layout, [("dose_time", "08:15")], previous=stored).document == stored


def test_empty_inputs_are_absent_never_empty_strings(kitchen_sink):
    layout = layout_for(kitchen_sink)
    converted = _post(layout, [("code", "  "), ("weight", ""), ("grade", ""), ("onset-year", ""),
                               ("onset-month", ""), ("onset-day", ""), ("aware", "")])
    assert converted.document == {"site_code": "S1"} and converted.errors == {}


def test_an_emptied_row_is_dropped_and_errors_name_the_stored_row(kitchen_sink):
    layout = layout_for(kitchen_sink)
    converted = _post(layout, [("tubes-0-tube", "EDTA"), ("tubes-0-volume", "2"),
                               ("tubes-1-tube", ""), ("tubes-1-volume", ""),
                               ("tubes-2-tube", "serum"), ("tubes-2-volume", "lots")])
    assert converted.document["tubes"] == [{"tube": "EDTA", "volume": 2}, {"tube": "serum"}]
    assert converted.errors == {"/tubes/1/volume": ["enter a number, such as 4.5"]}
    assert [e.id for e in converted.rows["tubes"]] == ["tubes-0", "tubes-2"]  # the inputs the rows came from


def test_calculated_and_read_only_fields_are_never_taken_from_the_page(kitchen_sink):
    layout = layout_for(kitchen_sink)
    posted = [("bmi", "99"), ("total", "12"), ("site_code", "HACKED")]
    assert _post(layout, posted).document == {"site_code": "S1"}  # a new record: its default
    assert _post(layout, posted, previous={"site_code": "S7"}).document == {"site_code": "S7"}


def test_missing_flags_are_read_beside_the_value(kitchen_sink):
    layout = layout_for(kitchen_sink)
    converted = _post(layout, [("missing-weight", "not_done"), ("missing-weight-reason", " scale broken ")])
    assert converted.missing == {"/weight": {"flag": "not_done", "reason": "scale broken"}}
    refused = _post(layout, [("missing-weight", "not_applicable")])
    assert refused.errors == {"/weight": ["is not one of the allowed choices"]} and refused.missing == {}
