"""``ecrf import redcap``: the six public REDCap dictionaries convert and validate, with their warnings
listed; bad dictionaries are refused with the field named and nothing written."""
import json
from pathlib import Path

import pytest

from ecrf.definitions import load_study
from ecrf.exchange.import_redcap import import_redcap, parse_choices
from ecrf.exchange.studyfiles import ConversionRefused, plain_text
from ecrf.errors import Invalid
from ecrf.rules.derive import hidden_fields

REFERENCE = Path("/work/shared/reference/redcap")
HEADER = ('"Variable / Field Name","Form Name","Section Header","Field Type","Field Label",'
          '"Choices, Calculations, OR Slider Labels","Field Note","Text Validation Type OR Show Slider Number",'
          '"Text Validation Min","Text Validation Max",Identifier?,"Branching Logic (Show field only if...)",'
          '"Required Field?","Custom Alignment","Question Number (surveys only)","Matrix Group Name",'
          '"Matrix Ranking?","Field Annotation"\n')
DATETIME = "REDCap date-times have no time zone"
RECORD_ID = "the record id field is the subject id in ecrf"

#: file -> (forms, {where: start of the warning}) as converted today; a change shows up here.
EXPECTED = {
    "redcapapi-test-dictionary.csv": (10, {
        "record_id/record_id": RECORD_ID,
        "dates_and_times/datetime_dmy_hm_test": DATETIME, "dates_and_times/datetime_mdy_hm_test": DATETIME,
        "dates_and_times/datetime_ymd_hm_test": DATETIME, "dates_and_times/datetime_dmy_hms_test": DATETIME,
        "dates_and_times/datetime_mdy_hms_test": DATETIME, "dates_and_times/datetime_ymd_hms_test": DATETIME,
        "files_notes_descriptions/file_upload_test": "file fields have no equivalent",
        "files_notes_descriptions/signature_test": "signature fields have no equivalent",
        "branching_logic/two_prereq_or": "branching logic \"[prereq_yesno] = '1' or [prereq_date] > "
                                         "'2024-01-01'\" not translated",
        "repeating_instrument/repeat_datetime": DATETIME}),
    "redcapr-blank-for-gray-status-dictionary.csv": (3, {
        "demographics/record_id": RECORD_ID, "health/mugshot": "file fields have no equivalent"}),
    "redcapr-longitudinal-dictionary.csv": (9, {
        "demographics/study_id": RECORD_ID, "demographics/patient_document": "file fields have no equivalent"}),
    "redcapr-potentially-problematic-dictionary.csv": (1, {
        "form_1/record_id": RECORD_ID, "form_1/v1": "the label holds U+FFFD"}),
    "redcapr-survey-dictionary.csv": (4, {"prescreening_survey/participant_id": RECORD_ID}),
    "redcapr-validation-types-1-dictionary.csv": (1, {
        "form_1/record_id": RECORD_ID, "form_1/f_file_upload": "file fields have no equivalent",
        "form_1/f_signature": "signature fields have no equivalent",
        "form_1/f_sql": "sql fields have no equivalent",
        "form_1/v_datetime_dmy": DATETIME, "form_1/v_datetime_mdy": DATETIME,
        "form_1/v_datetime_seconds_dmy": DATETIME, "form_1/v_datetime_seconds_mdy": DATETIME,
        "form_1/v_datetime_seconds_ymd": DATETIME, "form_1/v_datetime_ymd": DATETIME}),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_public_dictionary_converts_and_validates(name, tmp_path):
    conversion, loaded = import_redcap(REFERENCE / name, "ref", tmp_path / "ref")
    forms, warnings = EXPECTED[name]
    assert len(loaded.forms) == forms
    assert load_study(tmp_path / "ref").hash == loaded.hash  # what was written validates
    got = {}
    for where, message in conversion.warnings:
        got.setdefault(where, message)
    assert set(got) == set(warnings)
    for where, start in warnings.items():
        assert got[where].startswith(start), (where, got[where])


def test_every_validation_type_has_its_schema(tmp_path):
    _, loaded = import_redcap(REFERENCE / "redcapr-validation-types-1-dictionary.csv", "v", tmp_path / "v")
    form = loaded.forms["form_1"]
    schema = {f.name: dict(f.schema) for f in form.fields}
    assert schema["v_date_dmy"]["format"] == "date" and schema["v_date_mdy"]["format"] == "date"
    assert schema["v_integer"]["type"] == "integer" and schema["v_number_2dp"]["x-ecrf"]["decimals"] == 2
    assert schema["v_number_3dp_comma_decimal"]["type"] == "number"
    assert schema["v_email"]["format"] == "email"
    assert schema["v_zipcode"]["pattern"] == "^[0-9]{5}(-[0-9]{4})?$"
    assert schema["v_time_mm_ss"]["pattern"] == "^[0-5][0-9]:[0-5][0-9]$"
    assert schema["f_checkbox"]["type"] == "array" and schema["f_checkbox"]["items"]["enum"] == ("0", "1", "2")
    assert schema["f_calculated"]["x-ecrf"]["calculate"] == "(3 + 4)"
    assert schema["f_slider"]["type"] == "integer"
    assert schema["f_yes_no"]["enum"] == ("1", "0")


def test_identifiers_sections_notes_required_and_bounds(tmp_path):
    _, loaded = import_redcap(REFERENCE / "redcapr-blank-for-gray-status-dictionary.csv", "g", tmp_path / "g")
    demographics = loaded.forms["demographics"]
    first = demographics.field("name_first")
    assert "identifier" in first.schema["$comment"]
    sections = demographics.schema["x-ecrf"]["sections"]
    assert sections[0]["title"] == "Contact Information" and first.ecrf["section"] == sections[0]["id"]
    doc = json.loads((tmp_path / "g" / "health.json").read_text(encoding="utf-8"))
    assert any("minimum" in f or "maximum" in f for f in doc["properties"].values())


def test_branching_logic_hides_fields_as_redcap_does(tmp_path):
    _, loaded = import_redcap(REFERENCE / "redcapapi-test-dictionary.csv", "b", tmp_path / "b")
    form = loaded.forms["branching_logic"]
    hidden = set(hidden_fields(form, {"prereq_checkbox": ["ABC"], "prereq_number": -1}))
    assert "one_prereq_checkbox" not in hidden and "one_prereq_inequality" not in hidden
    assert "one_prereq_non_checkbox" in hidden and "two_prereq_and" in hidden
    hidden = set(hidden_fields(form, {"prereq_radio": "2", "prereq_yesno": "0"}))
    assert "three_prereq_andor" not in hidden and "one_prereq_checkbox" in hidden


def test_the_matrix_groups_become_one_section(tmp_path):
    _, loaded = import_redcap(REFERENCE / "redcapr-longitudinal-dictionary.csv", "m", tmp_path / "m")
    form = next(f for f in loaded.forms.values() if f.field("gym") is not None)
    assert form.field("gym").ecrf["section"] == form.field("drink").ecrf["section"]
    assert form.field("gym").ecrf["widget"] == "checkboxes"


def write_dictionary(tmp_path, lines, name="d.csv", encoding="utf-8"):
    path = tmp_path / name
    path.write_bytes((HEADER + "\n".join(lines) + "\n").encode(encoding))
    return path


def test_html_in_labels_is_reduced_to_safe_text(tmp_path):
    path = write_dictionary(tmp_path, [
        "record_id,f,,text,ID,,,,,,,,,,,,,",
        'q1,f,"<h2 style=""color:red"">Part <b>A</b></h2>",text,'
        '"<script>alert(1)</script>Weight <i>today</i> &amp; <span>now</span>",,<b>kg</b>,,,,,,,,,,,',
        'q2,f,,radio,"Pick [q1] one","1, <u>Yes</u> | 2, No &lt;never&gt;",,,,,,,,,,,,',
        "q3,f,,descriptive,<img src=x onerror=alert(1)>,,,,,,,,,,,,,"])
    conversion, loaded = import_redcap(path, "h", tmp_path / "h")
    form = loaded.forms["f"]
    assert form.field("q1").title == "Weight today & now"
    assert form.field("q1").schema["description"] == "kg"
    assert form.schema["x-ecrf"]["sections"][0]["title"] == "Part A"
    assert dict(form.field("q2").ecrf["labels"]) == {"1": "Yes", "2": "No <never>"}
    assert ("f/q2", "piping (a [field] in the label) is not supported; shown as written") in conversion.warnings
    assert "<" not in (tmp_path / "h" / "f.json").read_text(encoding="utf-8").replace("No <never>", "")


def test_bad_dictionaries_are_refused_naming_each_field(tmp_path):
    path = write_dictionary(tmp_path, [
        "record_id,f,,text,ID,,,,,,,,,,,,,",
        "a,f,,text,A,,,,,,,[b] = '1',,,,,,",
        "b,f,,text,B,,,,,,,[a] = '1',,,,,,",
        "c,f,,text,C,,,,,,,[c] = '1',,,,,,",
        "a,f,,text,A again,,,,,,,,,,,,,",
        "d,f,,barcode,D,,,,,,,,,,,,,",
        "Bad-Name,f,,text,E,,,,,,,,,,,,,"])
    with pytest.raises(ConversionRefused) as exc:
        import_redcap(path, "bad", tmp_path / "bad")
    text = "\n".join(f"{w}: {m}" for w, m in exc.value.errors)
    assert "line 6: field 'a': duplicate field name (first on line 3)" in text
    assert "line 7: field 'd': unknown field type 'barcode'" in text
    assert "line 8: field 'Bad-Name': a field name must be lower-case" in text
    assert "field 'a': circular branching logic: a -> b -> a" in text
    assert "field 'c': circular branching logic: c -> c" in text
    assert not (tmp_path / "bad").exists()


def test_a_byte_order_mark_is_fine_and_another_encoding_is_a_clear_error(tmp_path):
    lines = ["record_id,f,,text,ID,,,,,,,,,,,,,", "q,f,,text,Größe,,,,,,,,,,,,,"]
    bom = write_dictionary(tmp_path, lines, "bom.csv", "utf-8-sig")
    _, loaded = import_redcap(bom, "bom", tmp_path / "bom")
    assert loaded.forms["f"].field("q").title == "Größe"
    latin = write_dictionary(tmp_path, lines, "latin.csv", "latin-1")
    with pytest.raises(Invalid, match="is not UTF-8 .* --encoding"):
        import_redcap(latin, "latin", tmp_path / "latin")
    _, loaded = import_redcap(latin, "latin", tmp_path / "latin", encoding="latin-1")
    assert loaded.forms["f"].field("q").title == "Größe"


def test_events_become_visits_and_repeating_instruments_log_forms(tmp_path):
    events = tmp_path / "events.csv"
    events.write_text('arm_num,unique_event_name,form\n1,enrollment_arm_1,demographics\n'
                      '1,enrollment_arm_1,baseline_data\n1,dose_1_arm_1,visit_lab_data\n'
                      '1,dose_1_arm_1,patient_morale_questionnaire\n1,visit_2_arm_1,visit_lab_data\n'
                      '1,final_visit_arm_1,completion_data\n1,final_visit_arm_1,visit_blood_workup\n',
                      encoding="utf-8")
    conversion, loaded = import_redcap(REFERENCE / "redcapr-longitudinal-dictionary.csv", "lg", tmp_path / "lg",
                                       events_path=events, repeating=["visit_blood_workup"])
    assert [(v.id, v.forms) for v in loaded.visits] == [
        ("enrollment", ("demographics", "baseline_data")),
        ("dose_1", ("visit_lab_data", "patient_morale_questionnaire")),
        ("visit_2", ("visit_lab_data",)), ("final_visit", ("completion_data",))]
    assert loaded.log_forms == ("visit_blood_workup",)
    left_out = {w for w, m in conversion.warnings if "in no event" in m}
    assert left_out == {"contact_info", "visit_observed_behavior", "completion_project_questionnaire"}


def test_the_command_prints_the_warnings_and_refuses_to_overwrite(cli, tmp_path):
    out = tmp_path / "forms" / "surv"
    args = ("import", "redcap", str(REFERENCE / "redcapr-survey-dictionary.csv"), "--study-id", "surv",
            "-o", str(out))
    result = cli(*args)
    assert result.exit_code == 0, result.output
    assert "4 forms" in result.output and "valid" in result.output
    assert "warning: prescreening_survey/participant_id: the record id field" in result.output
    assert cli("study", "validate", str(out)).exit_code == 0
    again = cli(*args)
    assert again.exit_code == 1 and "--force" in again.output
    assert cli(*args, "--force").exit_code == 0
    wrong = cli("import", "redcap", str(REFERENCE / "redcapr-survey-dictionary.csv"), "--study-id", "other",
                "-o", str(out))
    assert wrong.exit_code == 1 and "named after the study id" in wrong.output


def test_parse_choices_and_plain_text():
    assert parse_choices("1, Yes | 2, No, not really|3") == [("1", "Yes"), ("2", "No, not really"), ("3", "3")]
    assert plain_text("a" * 600).endswith("\u2026") and len(plain_text("a" * 600)) == 500
    assert plain_text("x\x00y\u200b z") == "xy z"  # control and zero-width characters go


def test_a_required_field_with_branching_logic_is_required_only_while_shown(tmp_path):
    from ecrf.capture.service import prepare

    path = write_dictionary(tmp_path, [
        "record_id,f,,text,ID,,,,,,,,,,,,,",
        'sex,f,,radio,Sex,"0, Female | 1, Male",,,,,,,y,,,,,',
        "pregnant,f,,yesno,Pregnant?,,,,,,,[sex] = '0',y,,,,,"])
    _, loaded = import_redcap(path, "req", tmp_path / "req")
    form = loaded.forms["f"]
    assert prepare(form, {"sex": "1"}, True).errors == []
    assert prepare(form, {"sex": "0"}, True).errors == [("/pregnant", "this field is required")]
