"""The study-definition loader: every class of error it reports, and what a valid study gives back.

Each broken study starts from the minimal demo study (a copy of forms/demo) written into tmp_path and
breaks one thing; the test then names the file, the JSON pointer and the gist of the message.
"""
import copy
import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ecrf.definitions import DefinitionError, Study, StudyInvalid, load_study
from ecrf.definitions.loader import AE_REQUIRED_VARIABLES, MAX_FILE_BYTES
from ecrf.paths import resource

# --- the minimal demo study and helpers ----------------------------------------------------------

DEMO_STUDY = {
    "id": "demo",
    "title": "Demo study",
    "visits": [
        {"id": "baseline", "label": "Baseline", "day": 0, "forms": ["vitals"]},
        {"id": "week4", "label": "Week 4", "day": 28, "window_before": 3, "window_after": 3,
         "forms": ["vitals"]},
    ],
}

DEMO_VITALS = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "Vital signs",
    "type": "object",
    "properties": {
        "sbp": {"type": "integer", "title": "Systolic BP", "minimum": 50, "maximum": 260},
        "assessed": {"type": "string", "format": "date", "title": "Date assessed"},
    },
    "required": ["assessed"],
}


def demo():
    """Fresh, independent copies of the demo study.json and its vitals form."""
    return copy.deepcopy(DEMO_STUDY), copy.deepcopy(DEMO_VITALS)


def write_study(root, study=None, forms=None, folder="demo", raw=None):
    """Write a study folder under ``root`` from dicts and return its path.

    ``study`` is study.json (the demo's when None); ``forms`` maps form id to its schema (the demo's
    vitals when None); ``raw`` maps file names to bytes or text written exactly as given, replacing
    any file of the same name.
    """
    default_study, default_vitals = demo()
    path = Path(root) / folder
    path.mkdir(parents=True)
    (path / "study.json").write_text(json.dumps(default_study if study is None else study, indent=2),
                                     encoding="utf-8")
    for form_id, schema in ({"vitals": default_vitals} if forms is None else forms).items():
        (path / f"{form_id}.json").write_text(json.dumps(schema, indent=2), encoding="utf-8")
    for name, content in (raw or {}).items():
        if isinstance(content, bytes):
            (path / name).write_bytes(content)
        else:
            (path / name).write_text(content, encoding="utf-8")
    return path


def errors_of(folder, **kwargs):
    """The errors load_study raises for ``folder`` (the test fails if it loads)."""
    with pytest.raises(StudyInvalid) as info:
        load_study(folder, **kwargs)
    errors = info.value.errors
    assert errors, "StudyInvalid must carry at least one error"
    assert all(isinstance(e, DefinitionError) for e in errors)
    assert str(info.value) == "\n".join(str(e) for e in errors)
    return errors


def same_file(shown, expected):
    return Path(shown).resolve() == Path(expected).resolve()


def find_error(errors, file, pointer, *gists):
    """The one error about ``file`` at ``pointer`` whose message contains every gist."""
    hits = [e for e in errors if same_file(e.file, file) and e.pointer == pointer
            and all(g in e.message for g in gists)]
    listing = "\n".join(f"  {e.file} | {e.pointer!r} | {e.message}" for e in errors)
    assert hits, f"no error for {file} at {pointer!r} mentioning {gists}; got:\n{listing}"
    return hits[0]


def only_error(errors, file, pointer, *gists):
    listing = "\n".join(f"  {e.file} | {e.pointer!r} | {e.message}" for e in errors)
    assert len(errors) == 1, f"expected exactly one error, got:\n{listing}"
    return find_error(errors, file, pointer, *gists)


def vitals_with(**properties):
    """The demo vitals form with extra (or replaced) properties."""
    _, vitals = demo()
    vitals["properties"].update(properties)
    return vitals


def ae_form(variables=AE_REQUIRED_VARIABLES):
    props = {name: {"type": "string", "title": name.upper()} for name in variables}
    return {"type": "object", "title": "Adverse events", "properties": props, "required": ["aeterm"]}


# --- the demo study ------------------------------------------------------------------------------

def test_demo_study_loads(tmp_path):
    study = load_study(write_study(tmp_path))
    assert isinstance(study, Study)
    assert study.id == "demo" and study.title == "Demo study"
    assert [v.id for v in study.visits] == ["baseline", "week4"]
    week4 = study.visit("week4")
    assert (week4.day, week4.window_before, week4.window_after) == (28, 3, 3)
    assert study.visit("baseline").window_before == 0 and study.visit("baseline").window_after == 0
    assert study.visit("nope") is None
    assert week4.forms == ("vitals",)
    assert list(study.forms) == ["vitals"]
    vitals = study.forms["vitals"]
    assert vitals.title == "Vital signs"
    assert [f.name for f in vitals.fields] == ["sbp", "assessed"]
    assert vitals.field("assessed").required and not vitals.field("sbp").required
    assert vitals.field("sbp").title == "Systolic BP"
    assert vitals.field("sbp").kind == "integer"
    assert vitals.field("assessed").kind == "string (date)"
    assert vitals.field("missing") is None
    assert vitals.version == f"vitals@{vitals.hash[:12]}"
    assert len(study.hash) == 64 and int(study.hash, 16) >= 0
    assert study.log_forms == () and study.sites == () and study.arms == ()
    assert study.eligibility is None and study.safety is None


def test_the_path_of_study_json_itself_is_accepted(tmp_path):
    folder = write_study(tmp_path)
    assert load_study(folder / "study.json").hash == load_study(folder).hash


def test_a_utf8_byte_order_mark_is_accepted(tmp_path):
    _, vitals = demo()
    folder = write_study(tmp_path, raw={"vitals.json": b"\xef\xbb\xbf" + json.dumps(vitals).encode()})
    assert load_study(folder).forms["vitals"].title == "Vital signs"


def test_stored_definition_round_trips(tmp_path):
    from ecrf.definitions.loader import study_from_stored

    study = load_study(write_study(tmp_path))
    stored = study.stored_definition()
    assert stored == {"study": DEMO_STUDY, "forms": {"vitals": DEMO_VITALS}}
    json.dumps(stored)  # plain JSON, ready to store
    again = study_from_stored(stored)
    assert again.hash == study.hash
    assert again.forms["vitals"].hash == study.forms["vitals"].hash


# --- content hash ---------------------------------------------------------------------------------

def test_content_hash_is_stable_across_loads(tmp_path):
    folder = write_study(tmp_path)
    first, second = load_study(folder), load_study(folder)
    assert first.hash == second.hash
    assert first.forms["vitals"].hash == second.forms["vitals"].hash
    assert first.forms["vitals"].version == second.forms["vitals"].version


def test_content_hash_ignores_formatting_and_key_order(tmp_path):
    study, vitals = demo()
    compact = write_study(tmp_path / "a", study, {"vitals": vitals})
    reordered = dict(reversed(list(vitals.items())))
    (compact.parent.parent / "b").mkdir()
    spaced = compact.parent.parent / "b" / "demo"
    spaced.mkdir()
    (spaced / "study.json").write_text(json.dumps(study, indent=8, sort_keys=True), encoding="utf-8")
    (spaced / "vitals.json").write_text(json.dumps(reordered, separators=(",", ":")), encoding="utf-8")
    assert load_study(compact).hash == load_study(spaced).hash


def test_content_hash_changes_when_a_form_changes(tmp_path):
    folder = write_study(tmp_path)
    before = load_study(folder)
    _, vitals = demo()
    vitals["properties"]["sbp"]["maximum"] = 250
    (folder / "vitals.json").write_text(json.dumps(vitals), encoding="utf-8")
    after = load_study(folder)
    assert after.hash != before.hash
    assert after.forms["vitals"].hash != before.forms["vitals"].hash
    assert after.forms["vitals"].version != before.forms["vitals"].version


def test_content_hash_changes_when_study_json_changes_but_form_hash_does_not(tmp_path):
    folder = write_study(tmp_path)
    before = load_study(folder)
    study, _ = demo()
    study["visits"][1]["window_after"] = 5
    (folder / "study.json").write_text(json.dumps(study), encoding="utf-8")
    after = load_study(folder)
    assert after.hash != before.hash
    assert after.forms["vitals"].hash == before.forms["vitals"].hash


# --- frozen ---------------------------------------------------------------------------------------

def test_the_study_cannot_be_mutated(tmp_path):
    study = load_study(write_study(tmp_path))
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.title = "Changed"
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.visits[0].day = 5
    with pytest.raises(dataclasses.FrozenInstanceError):
        study.forms["vitals"].hash = "0" * 64
    with pytest.raises(TypeError):
        study.forms["labs"] = study.forms["vitals"]
    with pytest.raises(TypeError):
        study.document["title"] = "Changed"
    with pytest.raises(TypeError):
        study.document["visits"][0]["day"] = 5
    with pytest.raises((TypeError, AttributeError)):
        study.document["visits"].append({})
    with pytest.raises(TypeError):
        study.forms["vitals"].schema["properties"]["sbp"]["maximum"] = 999
    with pytest.raises(TypeError):
        study.forms["vitals"].fields[0].schema["type"] = "string"
    # what callers get to keep is a copy: changing it leaves the study as it was
    stored = study.stored_definition()
    stored["forms"]["vitals"]["properties"]["sbp"]["maximum"] = 999
    assert study.forms["vitals"].schema["properties"]["sbp"]["maximum"] == 260


# --- the folder and its files ---------------------------------------------------------------------

def test_missing_folder(tmp_path):
    missing = tmp_path / "nowhere"
    only_error(errors_of(missing), missing, "", "no such file or folder")


def test_a_file_other_than_study_json_is_refused(tmp_path):
    folder = write_study(tmp_path)
    only_error(errors_of(folder / "vitals.json"), folder / "vitals.json", "", "give the folder")


def test_missing_study_json(tmp_path):
    folder = write_study(tmp_path)
    (folder / "study.json").unlink()
    only_error(errors_of(folder), folder, "", "no study.json")


def test_file_that_is_not_utf8(tmp_path):
    folder = write_study(tmp_path, raw={"vitals.json": '{"title": "Vital signs \u2014 café"}'.encode("latin-1", "replace")})
    error = find_error(errors_of(folder), folder / "vitals.json", "", "not UTF-8")
    assert "byte" in error.message


def test_study_json_that_is_not_utf8(tmp_path):
    folder = write_study(tmp_path, raw={"study.json": b'{"id": "demo", "title": "Etude \xe9"}'})
    error = find_error(errors_of(folder), folder / "study.json", "", "not UTF-8")
    assert "byte 32" in error.message  # 1-based offset of \xe9


def test_invalid_json_names_line_and_column(tmp_path):
    folder = write_study(tmp_path, raw={"study.json": '{\n  "id": "demo"\n  "title": "Demo study"\n}\n'})
    only_error(errors_of(folder), folder / "study.json", "", "invalid JSON", "line 3", "column 3")


def test_invalid_json_in_a_form_names_line_and_column(tmp_path):
    folder = write_study(tmp_path, raw={"vitals.json": '{"type": "object",\n "properties": {,}}'})
    find_error(errors_of(folder), folder / "vitals.json", "", "invalid JSON", "line 2", "column 17")


def test_nan_is_not_json(tmp_path):
    folder = write_study(tmp_path, raw={"vitals.json": '{"type": "object", "properties": {}, "default": NaN}'})
    find_error(errors_of(folder), folder / "vitals.json", "", "NaN")


def test_duplicate_keys(tmp_path):
    text = ('{\n  "type": "object",\n  "title": "Vital signs",\n  "properties": {},\n'
            '  "title": "Vitals again"\n}\n')
    folder = write_study(tmp_path, raw={"vitals.json": text})
    error = find_error(errors_of(folder), folder / "vitals.json", "", "duplicate key 'title'")
    assert "line 5" in error.message


def test_duplicate_keys_in_a_nested_object(tmp_path):
    text = '{"id": "demo", "title": "Demo study", "visits": [{"id": "a", "id": "b"}]}'
    folder = write_study(tmp_path, raw={"study.json": text})
    find_error(errors_of(folder), folder / "study.json", "", "duplicate key 'id'")


def test_file_over_the_size_limit(tmp_path):
    folder = write_study(tmp_path)
    study_size = (folder / "study.json").stat().st_size
    vitals_size = (folder / "vitals.json").stat().st_size
    assert vitals_size > study_size
    limit = study_size
    error = only_error(errors_of(folder, max_bytes=limit), folder / "vitals.json", "",
                       "larger than the limit")
    assert f"{vitals_size} bytes" in error.message and f"{limit} bytes" in error.message
    assert load_study(folder, max_bytes=vitals_size).id == "demo"


def test_study_json_over_the_size_limit(tmp_path):
    folder = write_study(tmp_path)
    find_error(errors_of(folder, max_bytes=10), folder / "study.json", "", "larger than the limit of 10 bytes")


def test_default_size_limit_is_one_mebibyte():
    assert MAX_FILE_BYTES == 1024 * 1024


def test_form_file_name_must_be_a_form_id(tmp_path):
    _, vitals = demo()
    folder = write_study(tmp_path, raw={"Vital-Signs.json": json.dumps(vitals)})
    find_error(errors_of(folder), folder / "Vital-Signs.json", "", "<form-id>.json")


@pytest.mark.parametrize("text", ["null", "[]", "3", '"demo"'])
def test_study_json_holding_no_object(tmp_path, text):
    folder = write_study(tmp_path, raw={"study.json": text})
    only_error(errors_of(folder), folder / "study.json", "/", "must hold a JSON object")


@pytest.mark.parametrize("text", ["null", "[]", "true"])
def test_form_holding_no_object(tmp_path, text):
    folder = write_study(tmp_path, raw={"vitals.json": text})
    only_error(errors_of(folder), folder / "vitals.json", "/", "must hold a JSON Schema object")


# --- the meta-schemas -----------------------------------------------------------------------------

def test_wrong_type_in_a_form(tmp_path):
    vitals = vitals_with(sbp={"type": "integer", "title": "Systolic BP", "minimum": "fifty"})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/sbp/minimum",
               "'fifty' is not of type 'number'")


def test_wrong_type_in_study_json(tmp_path):
    study, _ = demo()
    study["visits"][1]["day"] = "28"
    folder = write_study(tmp_path, study)
    find_error(errors_of(folder), folder / "study.json", "/visits/1/day", "'28' is not of type 'integer'")


def test_missing_required_key_in_study_json(tmp_path):
    study, _ = demo()
    del study["title"]
    folder = write_study(tmp_path, study)
    find_error(errors_of(folder), folder / "study.json", "/", "'title' is a required property")


def test_unknown_key_in_study_json(tmp_path):
    study, _ = demo()
    study["sponsor"] = "ACME"
    folder = write_study(tmp_path, study)
    only_error(errors_of(folder), folder / "study.json", "/", "unknown key 'sponsor'")


def test_unknown_keys_in_a_visit(tmp_path):
    study, _ = demo()
    study["visits"][0]["windows"] = 3
    study["visits"][0]["visit_day"] = 0
    folder = write_study(tmp_path, study)
    only_error(errors_of(folder), folder / "study.json", "/visits/0", "unknown keys 'visit_day', 'windows'")


def test_pattern_message_is_plain(tmp_path):
    study, _ = demo()
    study["visits"][0]["id"] = "Baseline Visit"
    folder = write_study(tmp_path, study)
    find_error(errors_of(folder), folder / "study.json", "/visits/0/id",
               "'Baseline Visit' does not match the pattern")


def test_enum_message_lists_the_choices(tmp_path):
    study, _ = demo()
    study["protocol"] = {"phase": "5"}
    folder = write_study(tmp_path, study)
    find_error(errors_of(folder), folder / "study.json", "/protocol/phase", "'5' is not one of '1', '1b'")


def test_unknown_x_ecrf_key_on_a_nested_field(tmp_path):
    vitals = vitals_with(readings={"type": "array", "items": {"type": "object", "properties": {
        "value": {"type": "number", "x-ecrf": {"colour": "red"}}}}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json",
               "/properties/readings/items/properties/value/x-ecrf", "unknown key 'colour'")


def test_x_ecrf_widget_is_checked_against_the_meta_schema(tmp_path):
    vitals = vitals_with(note={"type": "string", "x-ecrf": {"widget": "dial"}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    find_error(errors_of(folder), folder / "vitals.json", "/properties/note/x-ecrf/widget",
               "'dial' is not one of")


def test_form_must_be_an_object_schema_with_properties(tmp_path):
    folder = write_study(tmp_path, forms={"vitals": {"type": "array", "items": {"type": "string"}}})
    only_error(errors_of(folder), folder / "vitals.json", "/type", '"type": "object"')


# --- study.json beyond the meta-schema ------------------------------------------------------------

def test_visit_naming_a_form_with_no_file(tmp_path):
    study, _ = demo()
    study["visits"][1]["forms"].append("labs")
    folder = write_study(tmp_path, study)
    only_error(errors_of(folder), folder / "study.json", "/visits/1/forms/1", "'labs' has no file labs.json")


def test_duplicate_visit_ids(tmp_path):
    study, _ = demo()
    study["visits"][1]["id"] = "baseline"
    folder = write_study(tmp_path, study)
    only_error(errors_of(folder), folder / "study.json", "/visits/1/id", "duplicate visit id 'baseline'")


def test_negative_window(tmp_path):
    study, _ = demo()
    study["visits"][1]["window_before"] = -3
    folder = write_study(tmp_path, study)
    only_error(errors_of(folder), folder / "study.json", "/visits/1/window_before",
               "-3 is less than the minimum of 0")


def test_form_file_not_used_by_any_visit(tmp_path):
    _, vitals = demo()
    labs = {"type": "object", "title": "Labs", "properties": {"hb": {"type": "number"}}}
    folder = write_study(tmp_path, forms={"vitals": vitals, "labs": labs})
    only_error(errors_of(folder), folder / "labs.json", "", "not used by any visit")


def test_forms_used_only_as_unscheduled_log_or_eligibility_forms_count_as_used(tmp_path):
    study, vitals = demo()
    labs = {"type": "object", "title": "Labs", "properties": {"hb": {"type": "number"}}}
    cm = {"type": "object", "title": "Concomitant medication", "properties": {"cmtrt": {"type": "string"}}}
    ie = {"type": "object", "title": "Eligibility", "properties": {
        "adult": {"type": "boolean"}, "pregnant": {"type": "boolean"}}}
    study.update(unscheduled_forms=["labs"], log_forms=["cm"],
                 eligibility={"form": "ie", "inclusion": ["adult"], "exclusion": ["pregnant"]})
    loaded = load_study(write_study(tmp_path, study, {"vitals": vitals, "labs": labs, "cm": cm, "ie": ie}))
    assert sorted(loaded.forms) == ["cm", "ie", "labs", "vitals"]
    assert loaded.log_forms == ("cm",)
    assert loaded.eligibility["form"] == "ie"


def test_study_id_differing_from_the_folder_name(tmp_path):
    folder = write_study(tmp_path, folder="demo-2")
    only_error(errors_of(folder), folder / "study.json", "/id", "'demo'", "'demo-2'")


STUDY_BREAKAGES = [
    # (what, change to study.json, extra forms, pointer, gist)
    ("duplicate arm ids",
     {"arms": [{"id": "a", "label": "A"}, {"id": "a", "label": "B"}]}, {},
     "/arms/1/id", "duplicate arm id 'a'"),
    ("duplicate site ids",
     {"sites": [{"id": "S1", "name": "One"}, {"id": "S1", "name": "Two"}]}, {},
     "/sites/1/id", "duplicate site id 'S1'"),
    ("visit for an unknown arm",
     {"arms": [{"id": "a", "label": "A"}], "visits": [
         {"id": "baseline", "label": "Baseline", "day": 0, "forms": ["vitals"], "arms": ["b"]}]}, {},
     "/visits/0/arms/0", "no arm 'b'"),
    ("randomization without arms",
     {"randomization": {"ratio": {"a": 1, "b": 1}}}, {},
     "/randomization", "randomization needs /arms"),
    ("randomization without arms, each weight",
     {"randomization": {"ratio": {"a": 1, "b": 1}}}, {},
     "/randomization/ratio/b", "no arm 'b' in /arms"),
    ("ratio naming an unknown arm",
     {"arms": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
      "randomization": {"ratio": {"a": 1, "c": 1}}}, {},
     "/randomization/ratio/c", "no arm 'c'"),
    ("arm without a weight",
     {"arms": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}, {"id": "c", "label": "C"}],
      "randomization": {"ratio": {"a": 1, "b": 1}}}, {},
     "/randomization/ratio", "arm 'c' has no allocation weight"),
    ("block size not a multiple of the ratio",
     {"arms": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
      "randomization": {"ratio": {"a": 2, "b": 1}, "block_sizes": [6, 4]}}, {},
     "/randomization/block_sizes/1", "block size 4 is not a multiple of the ratio total 3"),
    ("randomization at an unknown visit",
     {"arms": [{"id": "a", "label": "A"}, {"id": "b", "label": "B"}],
      "randomization": {"ratio": {"a": 1, "b": 1}, "visit": "day1"}}, {},
     "/randomization/visit", "no visit 'day1'"),
    ("subject id template without {n}",
     {"subjects": {"id_template": "{site}-X"}}, {},
     "/subjects/id_template", "must use {n}"),
    ("subject id template with another placeholder",
     {"subjects": {"id_template": "{site}-{year}-{n}"}}, {},
     "/subjects/id_template", "only {site} and {n}"),
    ("subject id pattern that is no regular expression",
     {"subjects": {"id_pattern": "^[A-Z"}}, {},
     "/subjects/id_pattern", "'^[A-Z' is not a 'regex'"),
    ("eligibility criterion that is not a field",
     {"eligibility": {"form": "vitals", "inclusion": ["sbp", "adult"]}}, {},
     "/eligibility/inclusion/1", "form 'vitals' has no field 'adult'"),
    ("eligibility form with no file",
     {"eligibility": {"form": "ie"}}, {},
     "/eligibility/form", "'ie' has no file ie.json"),
    ("log form also in a visit",
     {"log_forms": ["vitals"]}, {},
     "/visits/0/forms/0", "'vitals' is a log form and cannot also belong to a visit"),
    ("log form also in a visit, each visit",
     {"log_forms": ["vitals"]}, {},
     "/visits/1/forms/0", "'vitals' is a log form"),
    ("log form with no file",
     {"log_forms": ["cm"]}, {},
     "/log_forms/0", "'cm' has no file cm.json"),
    ("unscheduled form with no file",
     {"unscheduled_forms": ["labs"]}, {},
     "/unscheduled_forms/0", "'labs' has no file labs.json"),
    ("AE form that is not a log form",
     {"safety": {"ae_form": "ae"}, "unscheduled_forms": ["ae"]}, {"ae": ae_form()},
     "/safety/ae_form", "must also be one of /log_forms"),
]


@pytest.mark.parametrize("change,extra_forms,pointer,gist",
                         [case[1:] for case in STUDY_BREAKAGES], ids=[c[0] for c in STUDY_BREAKAGES])
def test_study_json_cross_checks(tmp_path, change, extra_forms, pointer, gist):
    study, vitals = demo()
    study.update(copy.deepcopy(change))
    folder = write_study(tmp_path, study, {"vitals": vitals, **extra_forms})
    errors = errors_of(folder)
    find_error(errors, folder / "study.json", pointer, gist)
    assert all(same_file(e.file, folder / "study.json") for e in errors)


def test_a_complete_study_json_loads(tmp_path):
    study, vitals = demo()
    study.update({
        "description": "A two-arm study.",
        "protocol": {"number": "DEMO-001", "registry_ids": ["NCT00000000"], "phase": "2",
                     "sponsor": "ACME", "design": "Randomized", "target_enrolment": 60},
        "timezone": "Europe/Berlin",
        "arms": [{"id": "drug", "label": "Drug", "type": "experimental"},
                 {"id": "placebo", "label": "Placebo", "type": "placebo_comparator"}],
        "randomization": {"method": "permuted_blocks", "ratio": {"drug": 1, "placebo": 1},
                          "block_sizes": [2, 4], "stratify_by": ["site"], "visit": "baseline"},
        "blinding": {"masking": "double", "masked": ["participant", "investigator"],
                     "unblinded_roles": ["pharmacist"]},
        "sites": [{"id": "DE-01", "name": "Berlin", "timezone": "Europe/Berlin", "country": "DE"}],
        "roles": {"investigator": {"label": "Principal investigator"}},
        "subjects": {"id_template": "{site}-{n:03}", "id_pattern": "^[A-Z]{2}-[0-9]{2}-[0-9]{3}$"},
        "safety": {"ae_form": "ae", "report_within_hours": 24},
        "log_forms": ["ae"],
    })
    loaded = load_study(write_study(tmp_path, study, {"vitals": vitals, "ae": ae_form()}))
    assert loaded.arms == ("drug", "placebo")
    assert loaded.sites[0].id == "DE-01" and loaded.sites[0].timezone == "Europe/Berlin"
    assert loaded.safety["ae_form"] == "ae"
    assert loaded.log_forms == ("ae",)


def test_ae_form_lacking_the_cdash_variables(tmp_path):
    study, vitals = demo()
    study.update(safety={"ae_form": "ae"}, log_forms=["ae"])
    folder = write_study(tmp_path, study, {"vitals": vitals, "ae": ae_form(["aeterm", "aestdat", "aeser"])})
    error = only_error(errors_of(folder), folder / "study.json", "/safety/ae_form",
                       "lacks the required CDASH variables")
    missing = error.message.split(": ", 1)[1].split(", ")
    assert missing == [v for v in AE_REQUIRED_VARIABLES if v not in ("aeterm", "aestdat", "aeser")]


def test_ae_form_missing_one_cdash_variable(tmp_path):
    study, vitals = demo()
    study.update(safety={"ae_form": "ae"}, log_forms=["ae"])
    variables = [v for v in AE_REQUIRED_VARIABLES if v != "saenarr"]
    folder = write_study(tmp_path, study, {"vitals": vitals, "ae": ae_form(variables)})
    error = only_error(errors_of(folder), folder / "study.json", "/safety/ae_form", "saenarr")
    assert error.message.endswith("variables: saenarr")


def test_the_cdash_ae_variables():
    assert AE_REQUIRED_VARIABLES == (
        "aeterm", "aestdat", "aeendat", "aeongo", "aetoxgr", "aeser", "aesdth", "aeslife", "aeshosp",
        "aesdisab", "aescong", "aesmie", "aerel", "aeacn", "aeout", "aecontrt", "saeawdtc", "saenarr")


# --- forms beyond the meta-schema -----------------------------------------------------------------

def test_required_field_not_in_properties(tmp_path):
    _, vitals = demo()
    vitals["required"] = ["assessed", "dbp"]
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/required/1", "required field 'dbp' is not in /properties")


def test_field_name_must_be_a_key(tmp_path):
    folder = write_study(tmp_path, forms={"vitals": vitals_with(DBP={"type": "integer"})})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/DBP", "field names are at most 50 lower-case")


def test_field_schema_must_be_an_object(tmp_path):
    folder = write_study(tmp_path, forms={"vitals": vitals_with(anything=True)})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/anything", "must be a JSON object")


def test_labels_on_a_list_whose_items_are_a_boolean_schema(tmp_path):
    vitals = vitals_with(tags={"type": "array", "items": True, "x-ecrf": {"labels": {"a": "A"}}})
    assert load_study(write_study(tmp_path, forms={"vitals": vitals})).forms["vitals"].field("tags")


def test_expression_reading_below_a_boolean_schema(tmp_path):
    rows = {"type": "array", "items": {"type": "object", "properties": {"any": True}}}
    vitals = vitals_with(rows=rows, n={"type": "integer", "x-ecrf": {"calculate": "count(rows.any)"}})
    assert load_study(write_study(tmp_path / "ok", forms={"vitals": vitals}))
    vitals["properties"]["n"]["x-ecrf"]["calculate"] = "count(rows.any.deeper)"
    folder = write_study(tmp_path / "bad", forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/n/x-ecrf/calculate",
               "reads 'rows.any.deeper', which is not a field")


def test_calculation_that_does_not_parse(tmp_path):
    vitals = vitals_with(weight={"type": "number"}, height={"type": "number"},
                         bmi={"type": "number", "readOnly": True,
                              "x-ecrf": {"calculate": "weight / (height * height"}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    error = only_error(errors_of(folder), folder / "vitals.json", "/properties/bmi/x-ecrf/calculate",
                       "does not parse")
    assert "expected ')'" in error.message and "at character" in error.message


def test_calculation_naming_an_unknown_field(tmp_path):
    vitals = vitals_with(height={"type": "number"},
                         bmi={"type": "number", "x-ecrf": {"calculate": "round(weight / (height * height), 1)"}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/bmi/x-ecrf/calculate",
               "reads 'weight', which is not a field")


def test_warning_naming_an_unknown_field(tmp_path):
    vitals = vitals_with(sbp={"type": "integer", "x-ecrf": {"warnings": [
        {"expect": "sbp > dbp", "message": "Systolic should exceed diastolic"}]}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/sbp/x-ecrf/warnings/0/expect",
               "reads 'dbp', which is not a field")


def test_warning_that_does_not_parse(tmp_path):
    vitals = vitals_with(sbp={"type": "integer", "x-ecrf": {"warnings": [
        {"expect": "sbp => 50", "message": "Low"}]}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/sbp/x-ecrf/warnings/0/expect",
               "does not parse")


def test_expression_over_a_repeating_group_column(tmp_path):
    tubes = {"type": "array", "items": {"type": "object", "properties": {"volume": {"type": "number"}}}}
    vitals = vitals_with(tubes=tubes, total={"type": "number", "x-ecrf": {"calculate": "sum(tubes.volume)"}})
    assert load_study(write_study(tmp_path / "ok", forms={"vitals": vitals})).forms["vitals"]
    vitals["properties"]["total"]["x-ecrf"]["calculate"] = "sum(tubes.weight)"
    folder = write_study(tmp_path / "bad", forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/total/x-ecrf/calculate",
               "reads 'tubes.weight', which is not a field")


def test_show_if_naming_a_field_that_does_not_exist(tmp_path):
    vitals = vitals_with(sex={"enum": ["F", "M"]},
                         pregnancy_test={"type": "boolean",
                                         "x-ecrf": {"show_if": {"properties": {"gender": {"const": "F"}},
                                                                "required": ["gender"]}}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/pregnancy_test/x-ecrf/show_if",
               "names a field 'gender' that does not exist")


def test_if_condition_naming_a_field_that_does_not_exist(tmp_path):
    vitals = vitals_with(sex={"enum": ["F", "M"]}, pregnant={"type": "boolean"})
    vitals["if"] = {"properties": {"sex": {"const": "F"}}, "required": ["sex"]}
    vitals["then"] = {"required": ["pregnancy"]}
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/then", "names a field 'pregnancy' that does not exist")


def test_if_in_all_of_naming_a_field_that_does_not_exist(tmp_path):
    vitals = vitals_with(sex={"enum": ["F", "M"]}, pregnant={"type": "boolean"})
    vitals["allOf"] = [{"if": {"properties": {"gender": {"const": "F"}}}, "then": {"required": ["pregnant"]}}]
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/allOf/0", "names a field 'gender'")


def test_dependent_required_naming_a_field_that_does_not_exist(tmp_path):
    vitals = vitals_with(sbp={"type": "integer"})
    vitals["dependentRequired"] = {"sbp": ["dbp"]}
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/dependentRequired", "names a field 'dbp'")


def test_valid_conditions_load(tmp_path):
    vitals = vitals_with(sex={"enum": ["F", "M"]}, pregnant={"type": "boolean", "x-ecrf": {
        "show_if": {"properties": {"sex": {"const": "F"}}, "required": ["sex"]}}})
    vitals["if"] = {"properties": {"sex": {"const": "F"}}, "required": ["sex"]}
    vitals["then"] = {"required": ["pregnant"]}
    vitals["dependentRequired"] = {"sbp": ["assessed"]}
    assert load_study(write_study(tmp_path, forms={"vitals": vitals})).forms["vitals"].field("pregnant")


def test_calculation_cycle(tmp_path):
    vitals = vitals_with(a={"type": "number", "x-ecrf": {"calculate": "b + 1"}},
                         b={"type": "number", "x-ecrf": {"calculate": "a * 2"}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    error = only_error(errors_of(folder), folder / "vitals.json", "/properties/a/x-ecrf/calculate",
                       "calculations depend on themselves")
    assert error.message.endswith("a -> b -> a")


def test_calculation_that_reads_itself(tmp_path):
    vitals = vitals_with(total={"type": "number", "x-ecrf": {"calculate": "coalesce(total, 0) + sbp"}})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    error = only_error(errors_of(folder), folder / "vitals.json", "/properties/total/x-ecrf/calculate",
                       "depend on themselves")
    assert error.message.endswith("total -> total")


def test_chained_calculations_without_a_cycle_load(tmp_path):
    vitals = vitals_with(weight={"type": "number"}, height_cm={"type": "number"},
                         height_m={"type": "number", "x-ecrf": {"calculate": "height_cm / 100"}},
                         bmi={"type": "number", "x-ecrf": {"calculate": "weight / (height_m * height_m)"}})
    assert load_study(write_study(tmp_path, forms={"vitals": vitals}))


def test_external_ref(tmp_path):
    vitals = vitals_with(dbp={"$ref": "common.json#/$defs/pressure"})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/dbp/$ref", "leaves the file")


def test_ref_over_the_network(tmp_path):
    vitals = vitals_with(dbp={"$ref": "https://example.org/schemas/pressure.json"})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/dbp/$ref", "leaves the file")


def test_ref_to_nothing(tmp_path):
    vitals = vitals_with(dbp={"$ref": "#/$defs/pressure"})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/dbp/$ref",
               "'#/$defs/pressure' points to nothing")


def test_ref_to_an_anchor_that_does_not_exist(tmp_path):
    vitals = vitals_with(dbp={"$ref": "#pressure"})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/dbp/$ref", "points to nothing")


def test_local_refs_load(tmp_path):
    vitals = vitals_with(dbp={"$ref": "#/$defs/pressure", "title": "Diastolic BP"},
                         map={"$ref": "#mean", "title": "Mean arterial pressure"})
    vitals["$defs"] = {"pressure": {"type": "integer", "minimum": 20, "maximum": 200},
                       "mean": {"$anchor": "mean", "type": "number"}}
    form = load_study(write_study(tmp_path, forms={"vitals": vitals})).forms["vitals"]
    assert form.field("dbp").schema["$ref"] == "#/$defs/pressure"


def test_circular_ref(tmp_path):
    vitals = vitals_with(dbp={"$ref": "#/$defs/a"})
    vitals["$defs"] = {"a": {"$ref": "#/$defs/b"}, "b": {"$ref": "#/$defs/a"}}
    folder = write_study(tmp_path, forms={"vitals": vitals})
    errors = errors_of(folder)
    find_error(errors, folder / "vitals.json", "/$defs/a/$ref", "circular $ref")
    find_error(errors, folder / "vitals.json", "/$defs/b/$ref", "circular $ref")
    assert all("circular" in e.message for e in errors)


def test_ref_to_itself(tmp_path):
    vitals = vitals_with(dbp={"$ref": "#/properties/dbp"})
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", "/properties/dbp/$ref",
               "'#/properties/dbp' leads back to itself")


def test_ref_to_an_enclosing_schema(tmp_path):
    node = {"type": "object", "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/node"}}}}
    vitals = vitals_with(tree={"$ref": "#/$defs/node"})
    vitals["$defs"] = {"node": node}
    folder = write_study(tmp_path, forms={"vitals": vitals})
    find_error(errors_of(folder), folder / "vitals.json", "/$defs/node/properties/children/items/$ref",
               "circular $ref")


X_ECRF_BREAKAGES = [
    # (what, form-level x-ecrf, extra properties, pointer, gist)
    ("unknown section", {}, {"note": {"type": "string", "x-ecrf": {"section": "history"}}},
     "/properties/note/x-ecrf/section", "no section 'history'"),
    ("duplicate section ids", {"sections": [{"id": "a", "title": "A"}, {"id": "a", "title": "B"}]}, {},
     "/x-ecrf/sections/1/id", "duplicate section id 'a'"),
    ("order naming an unknown field", {"order": ["assessed", "dbp"]}, {},
     "/x-ecrf/order/1", "no field 'dbp'"),
    ("summary naming an unknown field", {"summary": ["dbp"]}, {},
     "/x-ecrf/summary/0", "no field 'dbp'"),
    ("field-level key on the form", {"unit": "mmHg"}, {},
     "/x-ecrf/unit", "belongs on a field"),
    ("form-level key on a field", {}, {"note": {"type": "string", "x-ecrf": {"order": ["note"]}}},
     "/properties/note/x-ecrf/order", "belongs on the form"),
    ("label for a value not in the code list", {},
     {"sex": {"enum": ["F", "M"], "x-ecrf": {"labels": {"F": "Female", "X": "Other"}}}},
     "/properties/sex/x-ecrf/labels/X", "not one of the field's values"),
    ("label for a value not in the checkbox list", {},
     {"symptoms": {"type": "array", "items": {"enum": [1, 2]}, "x-ecrf": {"labels": {"1": "One", "3": "Three"}}}},
     "/properties/symptoms/x-ecrf/labels/3", "not one of the field's values"),
    ("decimals on an integer", {}, {"hr": {"type": "integer", "x-ecrf": {"decimals": 1}}},
     "/properties/hr/x-ecrf/decimals", "only to a number field"),
]


@pytest.mark.parametrize("form_x,extra,pointer,gist", [c[1:] for c in X_ECRF_BREAKAGES],
                         ids=[c[0] for c in X_ECRF_BREAKAGES])
def test_x_ecrf_cross_checks(tmp_path, form_x, extra, pointer, gist):
    vitals = vitals_with(**copy.deepcopy(extra))
    if form_x:
        vitals["x-ecrf"] = copy.deepcopy(form_x)
    folder = write_study(tmp_path, forms={"vitals": vitals})
    only_error(errors_of(folder), folder / "vitals.json", pointer, gist)


def test_every_x_ecrf_key_in_use_loads(tmp_path):
    vitals = vitals_with(
        sbp={"type": "integer", "title": "Systolic BP", "minimum": 50, "maximum": 260,
             "x-ecrf": {"unit": "mmHg", "section": "bp", "placeholder": "e.g. 120",
                        "missing": ["not_done"],
                        "warnings": [{"expect": "sbp < 180", "message": "Very high: please confirm"}]}},
        weight={"type": "number", "x-ecrf": {"unit": "kg", "decimals": 1, "missing": False}},
        sex={"oneOf": [{"const": 1, "title": "Female"}, {"const": 2, "title": "Male"}],
             "x-ecrf": {"widget": "radio", "labels": {"1": "Female", "2": "Male"}}},
        pregnant={"type": "boolean", "x-ecrf": {"show_if": {"properties": {"sex": {"const": 1}},
                                                            "required": ["sex"]}}},
        onset={"type": "string", "x-ecrf": {"widget": "partial-date"}},
        score={"type": "number", "readOnly": True, "x-ecrf": {"calculate": "round(weight / 2, 1)"}},
    )
    vitals["x-ecrf"] = {"sections": [{"id": "bp", "title": "Blood pressure", "description": "Seated"}],
                        "order": ["assessed", "sbp"], "summary": ["assessed"],
                        "licence_note": "Public domain"}
    form = load_study(write_study(tmp_path, forms={"vitals": vitals})).forms["vitals"]
    assert form.field("sbp").ecrf["unit"] == "mmHg"
    assert form.field("sex").kind == "code list"
    assert form.field("assessed").ecrf == {}


def test_field_kinds(tmp_path):
    vitals = vitals_with(
        symptoms={"type": "array", "items": {"enum": ["cough", "fever"]}, "uniqueItems": True},
        tubes={"type": "array", "items": {"type": "object", "properties": {"volume": {"type": "number"}}}},
        sex={"enum": ["F", "M"]},
        weight={"type": ["number", "null"]},
    )
    form = load_study(write_study(tmp_path, forms={"vitals": vitals})).forms["vitals"]
    assert form.field("symptoms").kind == "multiple choice"
    assert form.field("tubes").kind == "repeating group"
    assert form.field("sex").kind == "code list"
    assert form.field("weight").kind == "number/null"


# --- all problems at once -------------------------------------------------------------------------

def test_several_problems_are_all_reported(tmp_path):
    study, vitals = demo()
    study["visits"][1]["id"] = "baseline"                   # duplicate visit id
    study["visits"][1]["forms"].append("labs")              # no labs.json
    vitals["properties"]["sbp"]["minimum"] = "fifty"         # meta-schema
    conmed = {"type": "object", "properties": {"cmtrt": {"type": "string"}},
              "required": ["cmdose"]}                        # required, not a property; and unused
    ecg = {"type": "object", "properties": {"qtc": {"type": "number", "x-ecrf": {"calculate": "qt / rr"}}}}
    folder = write_study(tmp_path, study, {"vitals": vitals, "conmed": conmed, "ecg": ecg},
                         raw={"hist.json": "{\n  oops\n}"}, folder="other")
    errors = errors_of(folder)
    find_error(errors, folder / "study.json", "/id", "differs from its folder name")
    find_error(errors, folder / "study.json", "/visits/1/id", "duplicate visit id")
    find_error(errors, folder / "study.json", "/visits/1/forms/1", "no file labs.json")
    find_error(errors, folder / "vitals.json", "/properties/sbp/minimum", "is not of type 'number'")
    find_error(errors, folder / "conmed.json", "/required/0", "'cmdose'")
    find_error(errors, folder / "conmed.json", "", "not used by any visit")
    find_error(errors, folder / "ecg.json", "/properties/qtc/x-ecrf/calculate", "'qt'")
    find_error(errors, folder / "ecg.json", "/properties/qtc/x-ecrf/calculate", "'rr'")
    find_error(errors, folder / "hist.json", "", "invalid JSON", "line 2")
    assert len(errors) == len(set(errors)), "each problem is reported once"


def test_study_json_checks_still_run_when_a_form_file_is_broken(tmp_path):
    study, _ = demo()
    study["visits"][0]["forms"].append("labs")
    folder = write_study(tmp_path, study, raw={"vitals.json": "{"})
    errors = errors_of(folder)
    find_error(errors, folder / "vitals.json", "", "invalid JSON")
    find_error(errors, folder / "study.json", "/visits/0/forms/1", "no file labs.json")


def test_forms_are_checked_even_when_study_json_is_unreadable(tmp_path):
    vitals = vitals_with(sbp={"type": "integer", "minimum": "fifty"})
    folder = write_study(tmp_path, forms={"vitals": vitals}, raw={"study.json": "{"})
    errors = errors_of(folder)
    find_error(errors, folder / "study.json", "", "invalid JSON")
    find_error(errors, folder / "vitals.json", "/properties/sbp/minimum", "'fifty' is not of type 'number'")


def test_error_strings_read_file_pointer_message(tmp_path):
    study, _ = demo()
    study["sponsor"] = "ACME"
    folder = write_study(tmp_path, study)
    error = only_error(errors_of(folder), folder / "study.json", "/", "unknown key")
    assert str(error) == f"{error.file}: /: unknown key 'sponsor'"
    assert str(DefinitionError("x.json", "", "boom")) == "x.json: boom"


def test_files_are_shown_relative_to_the_working_folder(tmp_path, monkeypatch):
    vitals = vitals_with(sbp={"type": "integer", "minimum": "fifty"})
    write_study(tmp_path, forms={"vitals": vitals})
    monkeypatch.chdir(tmp_path)
    (error,) = errors_of(Path("demo"))
    assert error.file == str(Path("demo") / "vitals.json")
    (error,) = errors_of(tmp_path / "demo")
    assert error.file == str(Path("demo") / "vitals.json")


# --- the reference studies ------------------------------------------------------------------------

def _reference_studies():
    root = resource("forms")
    return sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith((".", "_")))


@pytest.mark.parametrize("name", _reference_studies())
def test_reference_study_loads(name):
    folder = resource("forms") / name
    try:
        study = load_study(folder)
    except StudyInvalid as exc:
        pytest.fail(f"forms/{name} does not load:\n{exc}")
    assert study.id == name
    assert study.forms, "a reference study has forms"


# --- robustness -----------------------------------------------------------------------------------

_KEYWORDS = ["type", "properties", "items", "required", "enum", "oneOf", "const", "title", "$ref",
             "$defs", "$anchor", "if", "then", "else", "allOf", "anyOf", "not", "dependentRequired",
             "x-ecrf", "calculate", "warnings", "expect", "message", "show_if", "labels", "section",
             "sections", "id", "order", "summary", "decimals", "unit", "widget", "missing", "format",
             "minimum", "additionalProperties", "sbp", "assessed", "rows", "a"]
_SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-5, 300),
                     st.sampled_from(["object", "array", "number", "integer", "string", "#", "#/$defs/a",
                                      "#a", "x.json", "sbp", "assessed", "a", "rows.a", "sbp + 1",
                                      "sum(rows.a)", "a +", "date", "1"]))
_JSON = st.recursive(_SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.sampled_from(_KEYWORDS), inner, max_size=5)),
    max_leaves=25)


def _write_and_load(study, vitals):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "demo"
        folder.mkdir()
        (folder / "study.json").write_text(json.dumps(study), encoding="utf-8")
        (folder / "vitals.json").write_text(json.dumps(vitals), encoding="utf-8")
        try:
            return load_study(folder)
        except StudyInvalid as exc:
            assert exc.errors and all(isinstance(e, DefinitionError) for e in exc.errors)
            return None


_ROBUST = settings(max_examples=100, deadline=None, database=None,
                   suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@_ROBUST
@given(st.dictionaries(st.sampled_from(_KEYWORDS), _JSON, max_size=6))
def test_any_form_document_loads_or_is_reported(extra):
    _, vitals = demo()
    vitals.update(extra)
    _write_and_load(DEMO_STUDY, vitals)


@_ROBUST
@given(st.dictionaries(st.sampled_from(["sbp", "assessed", "a", "rows", "x"]), _JSON, max_size=4))
def test_any_field_schemas_load_or_are_reported(properties):
    _write_and_load(DEMO_STUDY, vitals_with(**properties))


@_ROBUST
@given(_JSON)
def test_any_study_json_loads_or_is_reported(study):
    _, vitals = demo()
    _write_and_load(study, vitals)


_NAMES = st.sampled_from(["sbp", "assessed", "a", "b", "rows", "rows.v", "nope", "rows.nope"])
_EXPRESSIONS = st.one_of(
    st.builds(lambda x, op, y: f"{x} {op} {y}", _NAMES, st.sampled_from(["+", "-", "<", "==", "and"]), _NAMES),
    st.builds(lambda f, x: f"{f}({x})", st.sampled_from(["sum", "count", "abs", "round", "max"]), _NAMES),
    st.sampled_from(["a +", "(a", "", "  ", "x.__class__", "days_between(assessed, a)"]))
_CONDITIONS = st.one_of(
    st.builds(lambda n, v: {"properties": {n: {"const": v}}, "required": [n]},
              st.sampled_from(["a", "b", "nope"]), st.sampled_from([1, "F", True])),
    st.builds(lambda n: {"required": [n]}, st.sampled_from(["a", "nope"])),
    st.booleans())
_FIELD_X = st.fixed_dictionaries({}, optional={
    "calculate": _EXPRESSIONS,
    "warnings": st.lists(st.fixed_dictionaries({"expect": _EXPRESSIONS, "message": st.just("check")}),
                         max_size=2),
    "show_if": _CONDITIONS,
    "labels": st.dictionaries(st.sampled_from(["1", "2", "F", "true", "null"]), st.just("label"), max_size=3),
    "section": st.sampled_from(["s1", "s2"]),
    "decimals": st.integers(0, 3),
    "unit": st.just("mg"),
    "missing": st.one_of(st.just(False), st.just(["not_done"])),
    "widget": st.sampled_from(["radio", "table", "checkboxes"]),
})
_FIELD = st.one_of(
    st.builds(lambda t, x: {"type": t, "x-ecrf": x}, st.sampled_from(["number", "integer", "string", "boolean"]), _FIELD_X),
    st.builds(lambda e, x: {"enum": e, "x-ecrf": x}, st.lists(st.sampled_from([1, 2, "F", True, None]), min_size=1, unique=True), _FIELD_X),
    st.builds(lambda e, x: {"type": "array", "items": {"enum": e}, "x-ecrf": x}, st.lists(st.sampled_from([1, 2, "F"]), min_size=1, unique=True), _FIELD_X),
    st.builds(lambda x: {"type": "array", "items": {"type": "object", "properties": {"v": {"type": "number"}}}, "x-ecrf": x}, _FIELD_X),
    st.builds(lambda r: {"$ref": r}, st.sampled_from(["#/$defs/d", "#/$defs/e", "#d", "#/properties/a", "#", "x.json"])),
)
_FORM_X = st.fixed_dictionaries({}, optional={
    "sections": st.lists(st.fixed_dictionaries({"id": st.sampled_from(["s1", "s2"]), "title": st.just("S")}), max_size=2),
    "order": st.lists(st.sampled_from(["a", "b", "nope"]), unique=True, max_size=3),
    "summary": st.lists(st.sampled_from(["a", "rows"]), unique=True, max_size=2),
})


@_ROBUST
@given(st.dictionaries(st.sampled_from(["a", "b", "rows", "c"]), _FIELD, max_size=4), _FORM_X,
       st.dictionaries(st.sampled_from(["d", "e"]), st.one_of(_FIELD, st.builds(lambda f: dict(f, **{"$anchor": "d"}), _FIELD)), max_size=2),
       st.one_of(st.none(), _CONDITIONS))
def test_structured_forms_load_or_are_reported(properties, form_x, defs, condition):
    vitals = vitals_with(**properties)
    if form_x:
        vitals["x-ecrf"] = form_x
    if defs:
        vitals["$defs"] = defs
    if condition is not None:
        vitals["if"], vitals["then"] = condition, {"required": ["sbp"]}
    study = _write_and_load(DEMO_STUDY, vitals)
    if study is not None:
        form = study.forms["vitals"]
        for field in form.fields:
            assert field.kind and isinstance(field.ecrf, Mapping)


def test_form_ids_longer_than_50_characters_are_refused(tmp_path):
    """A form version label is '<form>@<12 hex>' in a 64-character column."""
    long_id = "f" * 51
    folder = write_study(tmp_path, forms={"vitals": vitals_with()})
    (folder / f"{long_id}.json").write_text((folder / "vitals.json").read_text())
    find_error(errors_of(folder), folder / f"{long_id}.json", "", "at most 50")
