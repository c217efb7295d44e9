"""A small blinded two-site study for the export tests, filled through the capture services.

It holds what an export must carry unchanged: Danish and Chinese text, a cell a spreadsheet would
read as a formula, integer and text code lists with labels, a partial date, a missing-data flag, a
multiple-choice field, a repeating group, a log form and allocated arms whose names appear nowhere
else (so a test can prove a blinded export never holds one).
"""
import datetime as dt
import json
import types

import pytest
from sqlalchemy import update

YN = {"type": "string", "enum": ["Y", "N"], "x-ecrf": {"labels": {"Y": "Yes", "N": "No"}}}
PARTIAL = {"type": "string", "pattern": "^[0-9]{4}(-(0[1-9]|1[0-2])(-(0[1-9]|[12][0-9]|3[01]))?)?$",
           "x-ecrf": {"widget": "partial-date"}}
FORMS = {
    "dm": {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Demographics", "type": "object",
           "properties": {
               "name": {"type": "string", "title": "Initials and remark", "maxLength": 200},
               "sex": {"type": "string", "title": "Sex", "enum": ["F", "M"],
                       "x-ecrf": {"labels": {"F": "Female", "M": "Male"}}},
               "grade": {"type": "integer", "title": "Grade", "enum": [1, 2, 3],
                         "x-ecrf": {"labels": {"1": "Mild", "2": "Moderate", "3": "Severe"}}},
               "onset": dict(PARTIAL, title="Onset"),
               "weight": {"type": "number", "title": "Weight", "minimum": 20, "maximum": 300,
                          "x-ecrf": {"unit": "kg", "missing": ["not_done", "unknown"]}},
               "smoker": dict(YN, title="Smoker"),
               "symptoms": {"type": "array", "title": "Symptoms", "uniqueItems": True,
                            "items": {"enum": ["cough", "fever"]},
                            "x-ecrf": {"widget": "checkboxes", "labels": {"cough": "Cough", "fever": "Fever"}}},
               "visdat": {"type": "string", "format": "date", "title": "Date of visit"}}},
    "ex": {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Exposure", "type": "object",
           "properties": {
               "doses": {"type": "array", "title": "Doses",
                         "items": {"type": "object", "properties": {
                             "dose": {"type": "number", "title": "Dose", "x-ecrf": {"unit": "mg"}},
                             "route": {"type": "string", "title": "Route"}}},
                         "x-ecrf": {"widget": "table"}}}},
    "ae": {"$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Adverse events", "type": "object",
           "properties": {"aeterm": {"type": "string", "title": "Adverse event"},
                          "aestdat": dict(PARTIAL, title="Start date")}},
}
ARMS = ("armzeta", "armomega")
DM_1 = {"name": "Søren Ærø, Åse; 李明", "sex": "F", "grade": 2, "onset": "2024-03", "smoker": "N",
        "symptoms": ["cough", "fever"], "visdat": "2026-01-05"}
DM_1_MISSING = {"/weight": {"flag": "not_done", "reason": "scale broken"}}
DM_2 = {"name": "=HYPERLINK(\"http://x\")", "sex": "M", "grade": 3, "onset": "2023", "weight": 70.5,
        "smoker": "Y", "symptoms": [], "visdat": "2026-01-06"}
EX_1 = {"doses": [{"dose": 2.5, "route": "oral"}, {"dose": 5, "route": "i.v. 静脉"}]}
AE_1 = [{"aeterm": "Headache", "aestdat": "2026-01"}, {"aeterm": "+Nausea", "aestdat": "2026-01-07"}]


def write_study(root, masking="double"):
    folder = root / "xs"
    folder.mkdir(parents=True)
    study = {"id": "xs", "title": "Export study",
             "arms": [{"id": ARMS[0], "label": "Zetacell"}, {"id": ARMS[1], "label": "Omegasal"}],
             "blinding": {"masking": masking, "unblinded_roles": ["pharmacist"]},
             "sites": [{"id": "01", "name": "København"}, {"id": "02", "name": "南宁"}],
             "visits": [{"id": "v1", "label": "Baseline", "day": 0, "forms": ["dm", "ex"]},
                        {"id": "v2", "label": "Week 4", "day": 28, "forms": ["dm"]}],
             "log_forms": ["ae"]}
    (folder / "study.json").write_text(json.dumps(study, ensure_ascii=False), encoding="utf-8")
    for form_id, schema in FORMS.items():
        (folder / f"{form_id}.json").write_text(json.dumps(schema, ensure_ascii=False), encoding="utf-8")
    return folder


def fill(session, actor):
    """Two subjects (one per site) with the data above; returns their keys."""
    from ecrf.capture.service import enrol_subject, save_form
    from ecrf.capture.visits import set_visit_date
    from ecrf.models import Subject

    one = enrol_subject(session, actor, "xs", "01").key
    two = enrol_subject(session, actor, "xs", "02").key
    for key in (one, two):
        set_visit_date(session, actor, "xs", key, "v1", dt.date(2026, 1, 5))
    save_form(session, actor, "xs", one, "v1", "dm", DM_1, missing=DM_1_MISSING)
    save_form(session, actor, "xs", two, "v1", "dm", DM_2)
    save_form(session, actor, "xs", one, "v1", "ex", EX_1)
    for entry in AE_1:
        save_form(session, actor, "xs", one, "", "ae", entry)
    # Allocation has no service yet (randomization is to come): the arm is set as it would store it.
    with session.begin():
        session.execute(update(Subject).where(Subject.key == one).values(arm=ARMS[0]))
        session.execute(update(Subject).where(Subject.key == two).values(arm=ARMS[1]))
    return one, two


@pytest.fixture
def xs(db, actor, tmp_path):
    """The export study, loaded and filled."""
    from ecrf.definitions import load_study
    from ecrf.definitions.publish import publish_study

    publish_study(db, actor, load_study(write_study(tmp_path / "forms")))
    one, two = fill(db, actor)
    return types.SimpleNamespace(one=one, two=two)


@pytest.fixture
def export(db, actor, tmp_path):
    """Run an export as the operator: ``export(fmt, **options)`` -> (result, output path)."""
    from ecrf.exchange.export_service import operator_scope, run_export

    counter = iter(range(100))

    def run(fmt, *, sites=(), forms=(), unblinded=False, **options):
        output = tmp_path / f"out{next(counter)}" / ("export.xml" if fmt == "odm" else "export")
        scope = operator_scope(db, "xs", sites, forms, unblinded)
        return run_export(db, actor, scope, fmt, output, **options), output

    return run
