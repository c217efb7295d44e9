"""Subjects: ids, eligibility-driven states, withdrawal, visit dates, the schedule and the matrix."""
import datetime as dt
import json
import shutil

import pytest
from sqlalchemy import select

from audit import audit_event
from ecrf.audit_check import verify_database
from ecrf.capture import subjects, visits
from ecrf.capture.matrix import subject_matrix
from ecrf.capture.schedule import schedule, window_warning
from ecrf.capture.service import enrol_subject, save_form
from ecrf.errors import Conflict, Invalid, NotFound
from ecrf.paths import resource
from ecrf.studies import add_site, definition, get_study

ELIGIBILITY = {
    "$schema": "https://json-schema.org/draft/2020-12/schema", "title": "Eligibility", "type": "object",
    "properties": {"inc_age": {"type": "boolean", "title": "Aged 18 or over"},
                   "exc_preg": {"type": "boolean", "title": "Pregnant or breast-feeding"}},
    "required": ["inc_age", "exc_preg"]}


@pytest.fixture
def screened(tmp_path, load_study, db, actor):
    """The demo study plus an eligibility form, a subject template and unscheduled visits."""
    folder = tmp_path / "screened"
    shutil.copytree(resource("forms") / "demo", folder)
    study = json.loads((folder / "study.json").read_text())
    study.update(id="screened", subjects={"id_template": "S{site}-{n:04}"},
                 eligibility={"form": "ie", "inclusion": ["inc_age"], "exclusion": ["exc_preg"]},
                 unscheduled_forms=["vitals"])
    study["visits"].insert(0, {"id": "screening", "label": "Screening", "day": -14, "window_before": 14,
                               "forms": ["ie"]})
    (folder / "study.json").write_text(json.dumps(study))
    (folder / "ie.json").write_text(json.dumps(ELIGIBILITY))
    load_study(folder)
    add_site(db, actor, "screened", "01", "Odense")
    return "screened"


def test_ids_follow_the_template_and_are_unique(screened, db, actor):
    first = enrol_subject(db, actor, screened, "01")
    second = enrol_subject(db, actor, screened, "01")
    assert (first.key, second.key) == ("S01-0001", "S01-0002")
    assert first.state == "screening"
    with pytest.raises(Conflict):
        enrol_subject(db, actor, screened, "01", "S01-0001")
    with pytest.raises(NotFound):
        enrol_subject(db, actor, screened, "99")
    with pytest.raises(Invalid):
        enrol_subject(db, actor, screened, "01", "bad id!")


def test_a_study_without_criteria_enrols_at_once(load_study, db, actor):
    load_study("demo")
    add_site(db, actor, "demo", "01", "Odense")
    assert enrol_subject(db, actor, "demo", "01").state == "enrolled"


def test_eligibility_decides_enrolment_or_screen_failure(screened, db, actor):
    ok = enrol_subject(db, actor, screened, "01")
    failed = enrol_subject(db, actor, screened, "01")
    save_form(db, actor, screened, ok.key, "screening", "ie", {"inc_age": True, "exc_preg": False}, complete=False)
    assert ok.state == "screening"  # a draft decides nothing
    save_form(db, actor, screened, ok.key, "screening", "ie", {"inc_age": True, "exc_preg": False},
              complete=True, expected_version=1)
    save_form(db, actor, screened, failed.key, "screening", "ie", {"inc_age": True, "exc_preg": True},
              complete=True)
    assert ok.state == "enrolled"
    assert failed.state == "screen_failed"
    assert failed.state_reason == "exclusion met: Pregnant or breast-feeding"
    assert verify_database(db).ok


def test_withdrawal_needs_a_reason_and_an_enrolled_subject(screened, db, actor):
    subject = enrol_subject(db, actor, screened, "01")
    with pytest.raises(Conflict):
        subjects.change_state(db, actor, screened, subject.key, "withdrawn", "consent withdrawn")
    save_form(db, actor, screened, subject.key, "screening", "ie", {"inc_age": True, "exc_preg": False},
              complete=True)
    with pytest.raises(Invalid):
        subjects.change_state(db, actor, screened, subject.key, "withdrawn", " ")
    subjects.change_state(db, actor, screened, subject.key, "withdrawn", "consent withdrawn")
    assert subject.state == "withdrawn"
    events = db.execute(select(audit_event.c.action, audit_event.c.reason)
                        .where(audit_event.c.subject == subject.key)).all()
    assert ("withdraw", "consent withdrawn") in events
    assert verify_database(db).ok


def test_visit_dates_drive_the_schedule_and_flag_dates_outside_the_window(load_study, db, actor):
    load_study("demo")
    add_site(db, actor, "demo", "01", "Odense")
    subject = enrol_subject(db, actor, "demo", "01")
    visits.set_visit_date(db, actor, "demo", subject.key, "baseline", "2026-01-01")
    spec = definition(get_study(db, "demo"))
    rows = {r.visit: r for r in schedule(spec, {"baseline": dt.date(2026, 1, 1)})}
    assert rows["week4"].target == dt.date(2026, 1, 29)
    assert (rows["week4"].earliest, rows["week4"].latest) == (dt.date(2026, 1, 26), dt.date(2026, 2, 1))
    assert rows["week4"].state(dt.date(2026, 1, 27)) == "due"
    assert rows["week4"].state(dt.date(2026, 2, 2)) == "overdue"
    visits.set_visit_date(db, actor, "demo", subject.key, "week4", "2026-02-10")
    assert window_warning(spec, "week4", {"baseline": dt.date(2026, 1, 1), "week4": dt.date(2026, 2, 10)})
    with pytest.raises(Invalid):
        visits.set_visit_date(db, actor, "demo", subject.key, "week4", "2026-02-11")  # no reason
    visits.set_visit_date(db, actor, "demo", subject.key, "week4", "2026-01-30", "wrong month typed")
    with pytest.raises(Invalid):
        visits.set_visit_date(db, actor, "demo", subject.key, "week4", "2026-02-30", "x")
    with pytest.raises(NotFound):
        visits.set_visit_date(db, actor, "demo", subject.key, "nope", "2026-01-30")
    report = verify_database(db)
    assert report.ok, report.problem


def test_unscheduled_visits_take_the_unscheduled_forms(screened, db, actor):
    subject = enrol_subject(db, actor, screened, "01")
    row = visits.add_unscheduled_visit(db, actor, screened, subject.key, "2026-03-01", "fever")
    assert row.visit_key == "unscheduled_1" and row.label == "fever"
    save_form(db, actor, screened, subject.key, "unscheduled_1", "vitals", {"sbp": 130})
    with pytest.raises(NotFound):
        save_form(db, actor, screened, subject.key, "unscheduled_2", "vitals", {"sbp": 130})
    assert verify_database(db).ok


def test_matrix_pages_filters_and_overdue(load_study, db, actor):
    load_study("demo")
    add_site(db, actor, "demo", "01", "Odense")
    add_site(db, actor, "demo", "02", "Aarhus")
    study = get_study(db, "demo")
    spec = definition(study)
    keys = [enrol_subject(db, actor, "demo", "01" if i % 2 else "02").key for i in range(7)]
    late = keys[0]
    visits.set_visit_date(db, actor, "demo", late, "baseline", "2026-01-01")
    save_form(db, actor, "demo", late, "baseline", "vitals", {"assessed": "2026-01-01"}, complete=True)
    page = subject_matrix(db, study, spec, page=1, per_page=3, today=dt.date(2026, 3, 1))
    assert page.total == 7 and page.pages == 3 and len(page.rows) == 3
    overdue = subject_matrix(db, study, spec, overdue=True, today=dt.date(2026, 3, 1))
    assert [r.subject for r in overdue.rows] == [late]
    cell = overdue.rows[0].cells
    assert cell["baseline"].status == "complete" and cell["baseline"].date == dt.date(2026, 1, 1)
    assert cell["week4"].timing == "overdue"
    site_two = [s for s in study_sites(db, study) if s.key == "02"][0]
    assert subject_matrix(db, study, spec, site=site_two).total == 4
    assert subject_matrix(db, study, spec, site_ids={site_two.id}).total == 4
    assert subject_matrix(db, study, spec, state="withdrawn").total == 0


def study_sites(db, study):
    from ecrf.studies import list_sites
    return list_sites(db, study)


def test_visits_of_subjects_off_the_schedule_are_never_overdue(screened, db, actor):
    from ecrf.capture import visits as visit_service
    failed = enrol_subject(db, actor, screened, "01")
    visit_service.set_visit_date(db, actor, screened, failed.key, "screening", "2026-01-01")
    save_form(db, actor, screened, failed.key, "screening", "ie", {"inc_age": False, "exc_preg": False},
              complete=True)
    study = get_study(db, screened)
    page = subject_matrix(db, study, definition(study), today=dt.date(2026, 6, 1))
    assert page.rows[0].state == "screen_failed"
    assert not {c.timing for c in page.rows[0].cells.values()} & {"due", "overdue"}
    assert subject_matrix(db, study, definition(study), overdue=True, today=dt.date(2026, 6, 1)).total == 0
